"""One job's bookkeeping, shared by every background job Plaza runs.

An answer, a draft job and a training run are each one row that a worker moves from
queued to running to finished, writing its progress on the way. `Job` is the abstract
model they extend: status, timestamps, error, cancel flag and attempts, with the
transitions (`job_start`, `job_finish`), the stop check a running job polls
(`job_should_stop`), one throttled progress writer (`ProgressWriter`) and one stale sweep
(`jobs_fail_stale`) that fails the rows a dead worker left running.

    class DraftJob(Job):
        STALE_AFTER = timedelta(minutes=10)
        STALE_ERROR = "the worker stopped before finishing this job; draft again"
        status = job_status_field(Status)

    job_start(job)                          # running, attempts + 1, started_at
    write = ProgressWriter(job, every_s=1)  # at most one UPDATE a second
    write(generated=3, kept=1)
    job_finish(job, DraftJob.Status.SUCCEEDED)
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import ClassVar

from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def job_status_field(choices: type[models.TextChoices] = JobStatus) -> models.CharField:
    """The status column of a job model, with that model's own choices."""
    return models.CharField(max_length=16, choices=choices.choices, default=choices.QUEUED)


class Job(models.Model):
    """The abstract job: one row per job, written by the worker that runs it.

    A subclass may bring its own `Status` (answers end `done`, not `succeeded`) and says
    how long a running row may go unwritten before its worker is taken for dead
    (`STALE_AFTER`), and what the row then says (`STALE_ERROR`)."""

    Status: ClassVar[type[models.TextChoices]] = JobStatus
    STALE_AFTER: ClassVar[timedelta] = timedelta(minutes=10)
    STALE_ERROR: ClassVar[str] = "the worker stopped before finishing this job"

    status = job_status_field()
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)  # deliveries that started it
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @classmethod
    def finished_statuses(cls) -> set[str]:
        """Every status but queued and running: the job will not move again."""
        return {s for s in cls.Status.values if s not in {"queued", "running"}}

    @property
    def finished(self) -> bool:
        return self.status in self.finished_statuses()


def job_start(job: Job, **fields) -> Job:
    """Mark a job running (one more attempt, started now), with any fields to reset."""
    now = timezone.now()
    type(job).objects.filter(pk=job.pk).update(
        status=job.Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        updated_at=now,
        **fields,
    )
    job.refresh_from_db()
    return job


def job_finish(job: Job, status: str, *, error: str = "", **fields) -> Job:
    """End a job with this status (and error), saving any other fields given with it."""
    for name, value in fields.items():
        setattr(job, name, value)
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.save(update_fields=["status", "error", "finished_at", "updated_at", *fields])
    return job


def job_should_stop(job: Job) -> bool:
    """Whether a running job should stop now: someone asked to cancel it, or the stale
    sweep (or anyone else) ended it while it ran."""
    return (
        type(job)
        .objects.filter(pk=job.pk)
        .filter(Q(cancel_requested=True) | ~Q(status=job.Status.RUNNING))
        .exists()
    )


class ProgressWriter:
    """Writes a running job's progress to its row, at most once every `every_s`.

    Call it with the fields as they are now; it writes them when the last write is old
    enough or when `force` is set (a checkpoint, the last step), and says whether it
    wrote. Each write also moves `updated_at`, which the stale sweep reads."""

    def __init__(self, job: Job, *, every_s: float) -> None:
        self.job = job
        self.every_s = every_s
        self.written_at: float | None = None

    def __call__(self, *, force: bool = False, **fields) -> bool:
        now = time.monotonic()
        due = self.written_at is None or now - self.written_at >= self.every_s
        if not (force or due):
            return False
        self.written_at = now
        type(self.job).objects.filter(pk=self.job.pk).update(updated_at=timezone.now(), **fields)
        return True


def jobs_fail_stale(model: type[Job], *, also: Q | None = None) -> int:
    """Fail the rows of `model` whose worker died: running with no write for the model's
    STALE_AFTER, or matching `also` (a model's own rule, such as an answer's deadline).
    Returns how many were failed.

    A failed job stays failed if its task is delivered again (a finished job is left as
    it is), and a worker that was only slow sees the row ended at its next stop check."""
    now = timezone.now()
    stale = Q(status=model.Status.RUNNING, updated_at__lt=now - model.STALE_AFTER)
    if also is not None:
        stale |= also
    return model.objects.filter(stale).update(
        status=model.Status.FAILED, error=model.STALE_ERROR, finished_at=now, updated_at=now
    )
