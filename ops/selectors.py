"""Reads for the ops page, its JSON and /metrics: one set of figures, read when asked.

    figures = ops_figures(hours=6)      # JSON-ready: index, freshness, broker, workers, jobs

Each part is read on its own: a part that fails (the index unreadable, the broker down) is
reported unavailable with the reason and the others still show; nothing here raises.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.utils import timezone

from ops import registry
from ops.broker import QueueDepths, queue_depths
from ops.models import FreshnessSample, WorkerHeartbeat

logger = logging.getLogger(__name__)

HEARTBEAT_STALE_S = 180  # beat asks every queue once a minute: three missed beats
FAILED_JOBS_HOURS = 24  # failed jobs listed from the last day
JOBS_LISTED = 10  # open and failed jobs listed per kind
BROKER_TIMEOUT_S = 2.0


def celery_queues() -> list[str]:
    """The queues the Celery app declares (config/celery.py), in its order."""
    return [queue.name for queue in current_app.conf.task_queues or []] or [
        current_app.conf.task_default_queue
    ]


def broker_queue_depths() -> QueueDepths:
    """Messages waiting in each of the app's queues, read from its broker."""
    return queue_depths(
        broker_url=current_app.conf.broker_url,
        queues=celery_queues(),
        transport_options=current_app.conf.broker_transport_options,
        timeout_s=BROKER_TIMEOUT_S,
    )


def index_part() -> dict:
    """The index's figures, with `available` and the reason when they could not be read."""
    try:
        figures = registry.index_figures()
    except Exception as exc:  # noqa: BLE001 - reported on the page, never a 500
        logger.exception("ops: index figures failed")
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    if figures is None:
        return {"available": False, "error": "No app registered an index."}
    return {"available": True, "error": "", **asdict(figures)}


def freshness_history(*, hours: int, now: datetime | None = None) -> list[dict]:
    """The freshness samples of the last `hours`, oldest first."""
    since = (now or timezone.now()) - timedelta(hours=hours)
    return list(
        FreshnessSample.objects.filter(taken_at__gte=since)
        .order_by("taken_at")
        .values("taken_at", "freshness_lag_s", "queued", "last_flush_lag_s")
    )


def worker_heartbeats(*, now: datetime | None = None) -> list[dict]:
    """Every worker's last check-in per queue, with its age and whether it is still alive."""
    now = now or timezone.now()
    return [
        {
            "queue": beat.queue,
            "hostname": beat.hostname,
            "pid": beat.pid,
            "seen_at": beat.seen_at,
            "age_s": round((now - beat.seen_at).total_seconds(), 1),
            "alive": (now - beat.seen_at).total_seconds() <= HEARTBEAT_STALE_S,
            "beats": beat.beats,
        }
        for beat in WorkerHeartbeat.objects.order_by("queue", "hostname")
    ]


def broker_part(*, workers: list[dict]) -> dict:
    depths = broker_queue_depths()
    alive: dict[str, int] = {}
    for worker in workers:
        if worker["alive"]:
            alive[worker["queue"]] = alive.get(worker["queue"], 0) + 1
    return {
        "url": depths.broker,
        "transport": depths.transport,
        "available": depths.available,
        "error": depths.error,
        "queues": [
            {"name": name, "depth": depths.depths.get(name), "workers": alive.get(name, 0)}
            for name in celery_queues()
        ],
    }


def jobs_part(*, now: datetime | None = None, limit: int = JOBS_LISTED) -> list[dict]:
    """Per registered kind of job: rows by status, the open ones, the recently failed."""
    failed_since = (now or timezone.now()) - timedelta(hours=FAILED_JOBS_HOURS)
    parts = []
    for source in registry.jobs_sources():
        part = {"kind": source.kind, "label": source.label}
        try:
            report = registry.jobs_report(source, failed_since=failed_since, limit=limit)
        except Exception as exc:  # noqa: BLE001 - reported on the page, never a 500
            logger.exception("ops: %s jobs failed", source.kind)
            parts.append(part | {"available": False, "error": f"{type(exc).__name__}: {exc}"})
            continue
        parts.append(
            part
            | {
                "available": True,
                "error": "",
                "counts": report.counts,
                "running": [asdict(row) for row in report.running],
                "failed": [asdict(row) for row in report.failed],
            }
        )
    return parts


def ops_figures(*, hours: int | None = None) -> dict:
    """Everything the ops page shows, JSON-ready (datetimes for DjangoJSONEncoder)."""
    now = timezone.now()
    hours = max(1, min(hours or settings.PLAZA_OPS_HISTORY_HOURS, settings.PLAZA_OPS_HISTORY_HOURS))
    workers = worker_heartbeats(now=now)
    return {
        "taken_at": now,
        "index": index_part(),
        "freshness": {"hours": hours, "samples": freshness_history(hours=hours, now=now)},
        "broker": broker_part(workers=workers),
        "workers": workers,
        "jobs": jobs_part(now=now),
        "failed_jobs_hours": FAILED_JOBS_HOURS,
    }
