"""Live index sync with real parts: PostgreSQL (in CI), Redis or the embedded broker, a
real Celery worker process and the real bundled encoder.

The API writes posts; the worker embeds them into the live generation; this process
searches that generation from disk, as the web process does.
"""

from __future__ import annotations

import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from posts.models import Post
from search import indexes, selectors
from search.backends import search_backend
from search.models import IndexGeneration, IndexQueueEntry
from search.services import reconcile
from tests.integration.workers import Worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DEMO = Path(__file__).resolve().parents[2] / "posts" / "demo" / "posts.jsonl"


@pytest.fixture(autouse=True)
def fresh_handles():
    indexes.close_all()
    yield
    indexes.close_all()


def search_ids(query: str, k: int = 10) -> list[int]:
    indexes.forget_live()
    return [hit.post.pk for hit in selectors.search_posts(query=query, k=k).hits]


def indexed_ids() -> set[int]:
    generation = indexes.live_generation(fresh=True)
    if generation is None:
        return set()
    return set(search_backend().ids(generation).tolist())


def drained() -> bool:
    return not IndexQueueEntry.objects.exists()


@pytest.fixture
def api(make_user):
    user = make_user("writer", "posts.add_post", "posts.change_post", "posts.delete_post")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.token.key}")
    return client


def test_post_lifecycle_through_the_api_reaches_search(configured_worker, api):
    """Created → found; edited → found by its new text, not its old; hidden → gone;
    unhidden → back; deleted → gone. Every step goes API → queue → worker → index."""
    worker = configured_worker
    call_command("import_posts", str(DEMO), "--no-progress", verbosity=0)  # background posts
    wait_for(drained, 300, worker)
    old_text = "Harbour seals spotted sunbathing on the old ferry pier this morning"
    response = api.post(
        "/api/posts",
        {"posts": [{"id": "sync-1", "author": "watcher", "text": old_text, "lang": "en",
                    "created_at": "2026-11-01T10:00:00Z"}]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    post = Post.objects.get(external_id="sync-1")
    wait_for(lambda: post.pk in indexed_ids(), 120, worker)
    assert post.pk in search_ids("seals sunbathing on a ferry pier", k=3)

    new_text = "Volunteers repaint the lighthouse in bright red and white stripes"
    response = api.patch(f"/api/posts/{post.pk}", {"text": new_text}, format="json")
    assert response.status_code == 200, response.content
    wait_for(drained, 120, worker)
    assert post.pk in search_ids("lighthouse painted red and white stripes", k=3)
    assert post.pk not in search_ids(f'"{old_text}"')  # the old words no longer match
    assert reconcile.index_reconcile().summary()["stale"] == 0  # its vector is the new text's

    response = api.patch(f"/api/posts/{post.pk}", {"hidden": True}, format="json")
    assert response.status_code == 200, response.content
    wait_for(lambda: post.pk not in indexed_ids(), 120, worker)
    assert post.pk not in search_ids("lighthouse painted red and white stripes", k=50)

    response = api.patch(f"/api/posts/{post.pk}", {"hidden": False}, format="json")
    wait_for(lambda: post.pk in indexed_ids(), 120, worker)
    assert post.pk in search_ids("lighthouse painted red and white stripes", k=3)

    response = api.delete(f"/api/posts/{post.pk}")
    assert response.status_code == 204, response.content
    wait_for(lambda: post.pk not in indexed_ids(), 120, worker)
    assert post.pk not in search_ids("lighthouse painted red and white stripes", k=50)


def test_posts_arriving_together_share_one_batch(configured_worker, api):
    """Two posts sent 0.2 s apart through the API are embedded and committed as one batch
    (the worker runs with the default batch window of one second)."""
    for n in range(2):
        response = api.post(
            "/api/posts",
            {"posts": [{"id": f"pair-{n}", "author": "watcher", "lang": "en",
                        "text": f"Night ferry timetable change number {n}",
                        "created_at": "2026-11-01T10:00:00Z"}]},
            format="json",
        )  # fmt: skip
        assert response.status_code == 201, response.content
        time.sleep(0.2)
    wait_for(lambda: len(indexed_ids()) == 2, 120, configured_worker)

    def flush_recorded() -> bool:  # the worker records its batch just after the commit
        generation = IndexGeneration.objects.filter(state="live").first()
        return generation is not None and generation.flushed_posts >= 2

    wait_for(flush_recorded, 60, configured_worker)
    generation = IndexGeneration.objects.get(state="live")
    assert generation.last_flush_posts == 2 and generation.flushed_posts == 2


def test_worker_killed_mid_batch_loses_nothing(settings):
    """SIGKILL after the first of several batches: after a restart and a reconcile every
    visible post is indexed with its current text, and nothing else is."""
    worker = Worker(settings.CELERY_BROKER_URL, settings.DATA_DIR, PLAZA_INDEX_BATCH="40")
    try:
        call_command("import_posts", str(DEMO), "--no-progress", verbosity=0)
        total = Post.objects.visible().count()
        assert IndexQueueEntry.objects.count() == total

        def first_batch_committed() -> bool:
            generation = IndexGeneration.objects.filter(state="live").first()
            return generation is not None and generation.last_flush_at is not None

        wait_for(first_batch_committed, 300, worker)
        worker.kill()
        left = IndexQueueEntry.objects.count()
        assert 0 < left < total, "the kill should land between batches"
    finally:
        worker.stop()

    restarted = Worker(settings.CELERY_BROKER_URL, settings.DATA_DIR)
    try:
        report = reconcile.index_reconcile()  # queues what is missing, then sends a flush
        assert len(report.missing) >= left - 40  # at most the batch in flight was written
        wait_for(drained, 300, restarted)
        wait_for(lambda: len(indexed_ids()) == total, 60, restarted)
        again = reconcile.index_reconcile()
        assert (again.missing, again.stale, again.removed) == ([], [], [])
        assert indexed_ids() == set(Post.objects.visible().values_list("id", flat=True))
    finally:
        restarted.stop()


def test_reindex_fans_out_over_the_index_workers(configured_worker):
    """`reindex --fan-out` sends the rebuild's chunks to the index queue and follows the
    worker through them until the new generation is live, holding every visible post."""
    worker = configured_worker
    call_command("import_posts", str(DEMO), "--no-progress", verbosity=0)
    wait_for(drained, 300, worker)
    old = indexes.live_generation(fresh=True)
    out = StringIO()
    call_command("reindex", "--fan-out", "--no-progress", "--timeout", "300", stdout=out)
    live = indexes.live_generation(fresh=True)
    assert live.name != old.name and f"generation {live.name} is live" in out.getvalue()
    assert live.chunks_done == live.chunks_total >= 1
    assert indexed_ids() == set(Post.objects.visible().values_list("id", flat=True))
    assert search_ids("cup final preview", k=1)  # the new generation answers
