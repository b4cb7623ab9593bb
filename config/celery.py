"""The Celery app: queues, routing and the delivery rules of DESIGN.md.

Queues: `default` (small chores), `index` (embedding and index writes, one writer),
`gpu` (answers, drafting, training; one model resident per process). Tasks are
acknowledged late and prefetched one at a time, so a worker killed mid-task hands
the task back; they must therefore be idempotent.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("plaza")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("default", "index", "gpu")

app.conf.update(
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="default",
    task_routes={
        "search.tasks.index_*": {"queue": "index"},
        "search.tasks.reconcile*": {"queue": "index"},
        "search.tasks.generation_*": {"queue": "default"},
        "search.tasks.answer_*": {"queue": "gpu"},
        "ads.tasks.draft_jobs_fail_stale": {"queue": "default"},  # exact names win
        "ads.tasks.*": {"queue": "gpu"},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_track_started=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    timezone="UTC",
    # One heartbeat per queue per minute: the ops page shows which queues are served.
    beat_schedule={
        f"worker-heartbeat-{queue}": {
            "task": "ops.tasks.worker_heartbeat",
            "schedule": 60.0,
            "args": (queue,),
            "options": {"queue": queue, "expires": 55},
        }
        for queue in QUEUES
    }
    | {
        # The database is the source of truth: repair the index both ways.
        "index-reconcile": {
            "task": "search.tasks.reconcile",
            "schedule": float(os.environ.get("PLAZA_RECONCILE_INTERVAL_S") or 600),
            "options": {"expires": 300},
        },
        "answers-fail-stale": {
            "task": "search.tasks.answers_fail_stale",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        "draft-jobs-fail-stale": {
            "task": "ads.tasks.draft_jobs_fail_stale",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        "training-runs-fail-stale": {
            "task": "ads.tasks.training_runs_fail_stale",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        # The ops page's freshness chart: one sample a minute, old ones pruned.
        "ops-freshness-sample": {
            "task": "ops.tasks.freshness_sample_record",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        "index-compact": {
            "task": "search.tasks.index_compact",
            "schedule": 3600.0,
            "options": {"expires": 1800},
        },
    },
)
app.autodiscover_tasks()
