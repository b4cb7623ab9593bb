"""The freshness lag's history: beat records a sample a minute from the index's figures,
old samples are pruned, and the ops figures chart the window asked for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ops import registry
from ops.models import FreshnessSample
from ops.services import freshness_sample_record, freshness_samples_prune

pytestmark = pytest.mark.django_db


def _sample(at, lag: float = 1.0) -> FreshnessSample:
    return FreshnessSample.objects.create(taken_at=at, freshness_lag_s=lag, queued=0)


def test_a_sample_records_the_waiting_changes_and_their_age(ops_posts):
    """Five posts written and not indexed: the sample counts five waiting changes, and
    the oldest one's age (set 30 s back) is the lag."""
    from search.models import IndexQueueEntry

    assert IndexQueueEntry.objects.count() == len(ops_posts)
    IndexQueueEntry.objects.filter(pk=IndexQueueEntry.objects.order_by("id").first().pk).update(
        enqueued_at=timezone.now() - timedelta(seconds=30)
    )
    sample = freshness_sample_record()
    assert sample.queued == len(ops_posts)
    assert 30 <= sample.freshness_lag_s < 60
    assert sample.generation == ""  # nothing indexed yet
    assert sample.last_flush_lag_s is None
    assert FreshnessSample.objects.get() == sample


def test_old_samples_are_pruned_as_new_ones_come(settings, index_dir):
    settings.PLAZA_OPS_HISTORY_HOURS = 24
    now = timezone.now()
    old = _sample(now - timedelta(hours=25))
    kept = _sample(now - timedelta(hours=23))
    fresh = freshness_sample_record(now=now)
    assert set(FreshnessSample.objects.values_list("pk", flat=True)) == {kept.pk, fresh.pk}
    assert not FreshnessSample.objects.filter(pk=old.pk).exists()

    settings.PLAZA_OPS_HISTORY_HOURS = 1
    assert freshness_samples_prune(now=now) == 1  # the 23-hour-old one
    assert list(FreshnessSample.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_nothing_is_recorded_without_an_index(monkeypatch):
    monkeypatch.setattr(registry, "_index_reader", [])
    assert freshness_sample_record() is None
    assert not FreshnessSample.objects.exists()


def test_beat_runs_the_sample_task_every_minute(index_dir):
    """The beat entry names a registered task on the default queue, and running that task
    writes a sample."""
    from config.celery import app
    from ops.tasks import freshness_sample_record as freshness_sample_record_task

    entry = app.conf.beat_schedule["ops-freshness-sample"]
    assert entry["task"] == freshness_sample_record_task.name
    assert entry["task"] in app.tasks
    assert entry["schedule"] == 60.0
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "default"
    assert freshness_sample_record_task.apply().get() == 0.0
    assert FreshnessSample.objects.count() == 1


def test_the_figures_chart_the_window_asked_for(staff_client, settings, index_dir):
    """?hours=1 charts the last hour only, oldest first; a window past the history kept
    is cut to it."""
    settings.PLAZA_OPS_HISTORY_HOURS = 24
    now = timezone.now()
    _sample(now - timedelta(hours=3), lag=9.0)
    _sample(now - timedelta(minutes=40), lag=2.5)
    _sample(now - timedelta(minutes=5), lag=0.5)
    one_hour = staff_client.get("/ops/figures", {"hours": 1}).json()["freshness"]
    assert one_hour["hours"] == 1
    assert [s["freshness_lag_s"] for s in one_hour["samples"]] == [2.5, 0.5]
    six = staff_client.get("/ops/figures", {"hours": 6}).json()["freshness"]
    assert [s["freshness_lag_s"] for s in six["samples"]] == [9.0, 2.5, 0.5]
    assert staff_client.get("/ops/figures", {"hours": 999}).json()["freshness"]["hours"] == 24
    assert staff_client.get("/ops/figures", {"hours": "x"}).json()["freshness"]["hours"] == 6
