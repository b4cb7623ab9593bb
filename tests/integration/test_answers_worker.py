"""Answers on a real Celery worker (gpu queue) with the real model: the text grows in the
row while the worker writes it, and a worker killed mid-answer leaves it failed after the
sweep, never running."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from posts.services import post_upsert_many
from search import indexes
from search.models import Answer
from search.services import answers as answer_services
from search.services import index_sync
from tests.integration.workers import Worker, wait_for
from tests.search.conftest import corpus_rows

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_handles():
    indexes.close_all()
    yield
    indexes.close_all()


def test_an_answer_runs_on_the_worker(configured_worker):
    """answer_create → on commit → the gpu queue → the worker writes the answer."""
    post_upsert_many(rows=corpus_rows())
    index_sync.index_flush()
    indexes.close_all()  # the worker is the writer from here on
    answer = answer_services.answer_create(question="how do I bake bread at home?")
    wait_for(lambda: Answer.objects.get(pk=answer.pk).finished, 180, configured_worker)
    answer.refresh_from_db()
    assert answer.status == "done" and answer.text and answer.total_ms


def test_a_worker_killed_mid_answer_leaves_it_failed(settings):
    """SIGKILL while the answer is running: the sweep marks it failed once it is silent."""
    post_upsert_many(rows=corpus_rows())
    index_sync.index_flush()
    indexes.close_all()
    # The answer pauses after its first write (its retrieved posts), so the kill always
    # lands while it runs, however fast the machine.
    paused = settings.DATA_DIR / "paused"
    worker = Worker(settings.CELERY_BROKER_URL, settings.DATA_DIR, pause_file=paused)
    try:
        answer = answer_services.answer_create(
            question="tell me everything about bread, rain, football and coffee"
        )
        worker.wait_for_pause(180)
        worker.kill()
    finally:
        worker.stop()
    answer.refresh_from_db()
    assert answer.status == "running"
    # The worker is gone: time passes with no writes (simulated), then the sweep runs.
    Answer.objects.filter(pk=answer.pk).update(
        updated_at=timezone.now() - answer_services.STALE_AFTER - timedelta(seconds=1)
    )
    assert answer_services.answers_fail_stale() == 1
    answer.refresh_from_db()
    assert answer.status == "failed" and "worker stopped" in answer.error
