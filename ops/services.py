import os

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ops.models import WorkerHeartbeat


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
