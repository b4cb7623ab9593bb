"""Ads tasks, each on the queue it names: drafting and training on `gpu` (one model
resident per worker process, loaded lazily in the child, never in a forking parent), the
stale sweeps on `default`, so a busy gpu worker never delays them. The names are fixed:
beat schedules and queued messages use them."""

from celery import shared_task
from django.conf import settings

from ads.services import drafting, training


@shared_task(
    name="ads.tasks.training_run_execute",
    queue_name="gpu",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,  # a killed worker hands the run back; it resumes
    # The soft limit fails the run with its reason a minute before the hard one kills it.
    soft_time_limit=max(1, settings.CELERY_TASK_TIME_LIMIT - 60),
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def training_run_execute(run_id: int) -> str:
    """Train (or resume from its newest checkpoint) one adapter."""
    return training.training_run_execute(run_id=run_id).status


@shared_task(name="ads.tasks.training_runs_fail_stale", queue_name="default", ignore_result=True)
def training_runs_fail_stale() -> int:
    """Mark failed the training runs whose worker died mid-way (beat, every minute)."""
    return training.training_runs_fail_stale()


@shared_task(
    name="ads.tasks.draft_job_execute",
    queue_name="gpu",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,  # a killed worker hands the job back; it drafts again
    soft_time_limit=max(1, settings.CELERY_TASK_TIME_LIMIT - 60),
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def draft_job_execute(job_id: int) -> str:
    """Draft one job's creatives with the worker's resident base model and the campaign's
    adapter (hot-swapped, LRU)."""
    return drafting.draft_job_execute(job_id=job_id).status


@shared_task(name="ads.tasks.draft_jobs_fail_stale", queue_name="default", ignore_result=True)
def draft_jobs_fail_stale() -> int:
    """Mark failed the draft jobs whose worker died mid-way (beat, every minute)."""
    return drafting.draft_jobs_fail_stale()
