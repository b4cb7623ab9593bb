import os
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ops import registry
from ops.models import FreshnessSample, WorkerHeartbeat


@transaction.atomic
def worker_heartbeat_record(*, hostname: str, queue: str) -> WorkerHeartbeat:
    """Record that `hostname` (this process) served `queue` just now."""
    beat, created = WorkerHeartbeat.objects.get_or_create(
        hostname=hostname,
        queue=queue,
        defaults={"pid": os.getpid(), "seen_at": timezone.now(), "beats": 1},
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=beat.pk).update(
            pid=os.getpid(), seen_at=timezone.now(), beats=F("beats") + 1
        )
        beat.refresh_from_db()
    return beat


def worker_heartbeat_request(*, queue: str) -> None:
    """Ask a worker on `queue` to check in, once the current transaction commits."""
    from ops.tasks import worker_heartbeat as worker_heartbeat_task

    transaction.on_commit(lambda: worker_heartbeat_task.apply_async((queue,), queue=queue))


def freshness_sample_record(*, now: datetime | None = None) -> FreshnessSample | None:
    """Record the index's freshness now and prune samples older than
    PLAZA_OPS_HISTORY_HOURS. None (nothing written) when no app registered an index."""
    figures = registry.index_figures()  # read outside the write transaction
    if figures is None:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        sample = FreshnessSample.objects.create(
            taken_at=now,
            freshness_lag_s=figures.freshness_lag_s,
            queued=figures.queued,
            last_flush_lag_s=figures.last_flush_lag_s,
            generation=figures.generation or "",
        )
        freshness_samples_prune(now=now)
    return sample


def freshness_samples_prune(*, now: datetime | None = None) -> int:
    """Delete the samples older than PLAZA_OPS_HISTORY_HOURS; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.PLAZA_OPS_HISTORY_HOURS)
    deleted, _ = FreshnessSample.objects.filter(taken_at__lt=cutoff).delete()
    return deleted
