"""The Celery app: queues, routing and the delivery rules of DESIGN.md.

Queues: `default` (small chores), `index` (embedding and index writes; one writer with
the faiss search backend, any number with postgres), `gpu` (answers, drafting, training;
one model resident per process), `build` (a rebuild's chunks: index and gpu workers both
take it, so a rebuild encodes on every worker that is up). Each task names its
queue where it is defined (`@shared_task(name=..., queue_name="gpu")`). Tasks are
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

QUEUES = ("default", "index", "gpu", "build")


def route_to_declared_queue(name, args, kwargs, options, task=None, **_):
    """Send a task to the queue it names where it is defined (`queue_name=` in its
    `@shared_task`), so renaming a task never moves it; None leaves it to the default."""
    task = task or app.tasks.get(name)
    if task is None:  # sent by name from a process that has not imported its module yet
        app.loader.import_default_modules()  # the apps' tasks modules (autodiscovery)
        task = app.tasks.get(name)
    return {"queue": task.queue_name} if getattr(task, "queue_name", None) else None


app.conf.update(
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="default",
    task_routes=(route_to_declared_queue,),
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
    # beat's schedule is CELERY_BEAT_SCHEDULE in the settings (it reads their intervals).
)
app.autodiscover_tasks()
