"""ops.jobs: the one job model that answers, draft jobs and training runs share: starting,
finishing, the throttled progress writer, the stop check and the stale sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ads.models import Campaign, DraftJob, TrainingRun
from ops.jobs import Job, ProgressWriter, job_finish, job_should_stop, job_start, jobs_fail_stale
from search.models import Answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_job(advertisers):
    """make_job(kind): a new queued row of that job model."""
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"], name="Boots", product="Boots", description="Boots"
    )
    makers = {
        "answer": lambda: Answer.objects.create(question="is the bridge open?"),
        "draft": lambda: DraftJob.objects.create(campaign=campaign, n=3),
        "training": lambda: TrainingRun.objects.create(
            adapter_name="a", base_model="m", dataset="demo", steps=4
        ),
    }
    return lambda kind: makers[kind]()


@pytest.fixture
def jobs(make_job):
    """One queued row of each job model."""
    return {kind: make_job(kind) for kind in ("answer", "draft", "training")}


@pytest.mark.parametrize("kind", ["answer", "draft", "training"])
def test_every_job_model_is_a_job_with_its_own_stale_rule(jobs, kind):
    """Each model extends Job, says how long a running row may stay unwritten and what the
    row then says, and ends in its own statuses."""
    job = jobs[kind]
    assert isinstance(job, Job)
    assert timedelta(0) < job.STALE_AFTER and "worker stopped" in job.STALE_ERROR
    assert job.status == "queued" and not job.finished
    assert {"queued", "running", "failed"} <= set(type(job).Status.values)
    assert "failed" in type(job).finished_statuses()
    assert not {"queued", "running"} & type(job).finished_statuses()


@pytest.mark.parametrize("kind", ["answer", "draft", "training"])
def test_start_counts_an_attempt_and_finish_ends_the_job(jobs, kind):
    job = job_start(jobs[kind])
    assert job.status == "running" and job.attempts == 1 and job.started_at
    job = job_start(job)  # delivered again
    assert job.attempts == 2
    job_finish(job, job.Status.FAILED, error="boom")
    job.refresh_from_db()
    assert job.finished and job.error == "boom" and job.finished_at >= job.started_at


def test_finish_saves_the_fields_given_with_it(jobs):
    answer = job_start(jobs["answer"])
    job_finish(answer, Answer.Status.DONE, text="The bridge is open [1].")
    answer.refresh_from_db()
    assert answer.status == "done" and answer.text == "The bridge is open [1]."


def test_the_progress_writer_writes_at_most_once_a_period_unless_forced(jobs):
    """The first call writes; calls within `every_s` do not, unless forced; each write
    moves updated_at (what the stale sweep reads)."""
    job = job_start(jobs["draft"])
    old = timezone.now() - timedelta(hours=1)
    DraftJob.objects.filter(pk=job.pk).update(updated_at=old)
    write = ProgressWriter(job, every_s=3600)
    assert write(generated=1, kept=0) is True
    row = DraftJob.objects.get(pk=job.pk)
    assert row.generated == 1 and row.updated_at > old
    assert write(generated=2, kept=1) is False
    assert DraftJob.objects.get(pk=job.pk).generated == 1
    assert write(force=True, generated=3, kept=2) is True
    assert DraftJob.objects.get(pk=job.pk).kept == 2


def test_a_period_of_zero_writes_every_call(jobs):
    answer = job_start(jobs["answer"])
    write = ProgressWriter(answer, every_s=0)
    assert all(write(text="x" * n) for n in range(1, 4))
    assert Answer.objects.get(pk=answer.pk).text == "xxx"


def test_a_running_job_stops_when_cancelled_or_ended_by_someone_else(jobs):
    run = job_start(jobs["training"])
    assert not job_should_stop(run)
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    assert job_should_stop(run)
    draft = job_start(jobs["draft"])
    DraftJob.objects.filter(pk=draft.pk).update(status="failed")  # the sweep, say
    assert job_should_stop(draft)


@pytest.mark.parametrize("kind", ["answer", "draft", "training"])
def test_the_sweep_fails_silent_running_jobs_only(make_job, kind):
    """A running row unwritten for longer than its model's STALE_AFTER is failed with the
    model's error; a running row written lately, a queued one and a finished one are not."""
    stuck, fresh, queued, done = (make_job(kind) for _ in range(4))
    model = type(stuck)
    for job in (stuck, fresh, done):
        job_start(job)
    job_finish(done, model.Status.FAILED, error="its own error")
    long_ago = timezone.now() - model.STALE_AFTER - timedelta(seconds=1)
    model.objects.filter(pk__in=[stuck.pk, queued.pk, done.pk]).update(updated_at=long_ago)
    assert jobs_fail_stale(model) == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == "failed" and stuck.error == model.STALE_ERROR and stuck.finished_at
    assert fresh.status == "running" and not fresh.error
    assert model.objects.get(pk=queued.pk).status == "queued"
    assert model.objects.get(pk=done.pk).error == "its own error"
    assert jobs_fail_stale(model) == 0  # a failed job stays as it is
    assert job_should_stop(stuck)  # a worker that was only slow stops at its next check


def test_the_sweep_takes_a_models_own_rule_beside_silence(jobs):
    """`also` adds a rule: here every queued answer, as if it had waited too long."""
    from django.db.models import Q

    assert jobs_fail_stale(Answer, also=Q(status="queued")) == 1
    assert Answer.objects.get(pk=jobs["answer"].pk).status == "failed"
