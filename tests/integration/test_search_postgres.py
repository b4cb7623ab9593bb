"""The `postgres` search backend as a cluster runs it: two web servers (gunicorn, each
with a data folder of its own, as two hosts) and two index workers, against one
PostgreSQL with pgvector. Both servers serve the same results; a post written through
either is found through both; neither web host keeps index files; a rebuild fans out
over both workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from posts.models import Post
from search.models import IndexBuildChunk, IndexGeneration, IndexQueueEntry
from tests.integration.workers import WebServer, Worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.backend("postgres"),
    pytest.mark.django_db(transaction=True),
]

WAIT_S = 120
TOPICS = [
    ("en", "Harbour seals sunbathe on the old ferry pier"),
    ("en", "The night train to the mountains is fully booked"),
    ("en", "A new bakery sells sourdough bread by the river"),
    ("es", "El tren nocturno a la montaña está completo"),
    ("es", "Las focas toman el sol en el muelle del ferry"),
    ("es", "Una panadería nueva vende pan de masa madre junto al río"),
]


@pytest.fixture
def cluster(settings, tmp_path):
    """Two web hosts and two index workers on one database and broker. The first worker
    pauses for good after its first rebuild chunk's write (tests/integration/pause.py)."""
    from tests.integration.conftest import queues_emptied

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("hosts share a network broker (CELERY_BROKER_URL=redis://...), not a folder")
    queues_emptied()
    webs = [WebServer(tmp_path / f"web-{n}") for n in (1, 2)]
    workers = []
    for n in (1, 2):
        folder = tmp_path / f"worker-{n}"
        folder.mkdir()
        pause = {"pause_file": tmp_path / "paused"} if n == 1 else {}
        workers.append(Worker(settings.CELERY_BROKER_URL, folder, name=f"index{n}", **pause))
    try:
        for web in webs:
            web.wait_ready()
        yield webs, workers
    finally:
        for web in webs:
            web.stop()
        for worker in workers:
            worker.stop()


def _search(web: WebServer, token: str, query: str) -> list[tuple[int, float]]:
    """(post id, fused score) of the top 5 through `web`'s API."""
    response = requests.get(
        f"{web.url}/api/search",
        params={"q": query, "k": 5},
        headers={"Authorization": f"Token {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return [(hit["id"], round(hit["score"], 6)) for hit in response.json()["results"]]


def _write(web: WebServer, token: str, external_id: str, lang: str, text: str) -> None:
    response = requests.post(
        f"{web.url}/api/posts",
        json={"posts": [{"id": external_id, "author": "watcher", "text": text, "lang": lang,
                         "created_at": "2026-11-01T10:00:00Z"}]},
        headers={"Authorization": f"Token {token}"},
        timeout=60,
    )  # fmt: skip
    assert response.status_code == 201, response.text


def _drained() -> bool:
    return not IndexQueueEntry.objects.exists()


def test_two_web_hosts_and_two_index_workers_serve_the_same_index(cluster, make_user):
    webs, workers = cluster
    token = make_user("writer", "posts.add_post", "posts.change_post").token.key
    for n, (lang, text) in enumerate(TOPICS):
        _write(webs[n % 2], token, f"topic-{n}", lang, text)
    wait_for(_drained, WAIT_S, workers[0])

    for query in ("seals on a ferry pier", "tren nocturno", "sourdough bread", "pan"):
        first, second = (_search(web, token, query) for web in webs)
        assert first and first == second, query

    # A post written through either host is found through both, once its worker commits.
    for n, web in enumerate(webs):
        text = ["Zeppelin voyage over the Patagonia glaciers", "Un zepelín cruza Patagonia"][n]
        _write(web, token, f"new-{n}", "en" if n == 0 else "es", text)
    wait_for(_drained, WAIT_S, workers[0])
    for n, query in enumerate(("zeppelin patagonia glaciers", "zepelín patagonia")):
        for web in webs:
            hits = _search(web, token, query)
            new = Post.objects.get(external_id=f"new-{n}").pk
            assert hits and hits[0][0] == new, (web.url, query, hits)

    # The web hosts keep no index of their own: it is all in PostgreSQL.
    for web in webs:
        assert not (web.folder / "index").exists()
    assert Post.objects.count() == len(TOPICS) + 2


def test_a_rebuild_fans_out_over_both_workers_and_survives_a_killed_one(
    cluster, make_user, settings
):
    """Chunks go to whichever worker is free; a worker killed after writing a chunk but
    before marking it done loses nothing: the chunk is done again by the other worker
    (resent by the stall sweep), counted once, and the new generation goes live holding
    every post."""
    from search.services import generations

    webs, workers = cluster
    token = make_user("writer", "posts.add_post", "posts.change_post").token.key
    for n in range(40):
        lang, text = TOPICS[n % len(TOPICS)]
        _write(webs[0], token, f"bulk-{n}", lang, f"{text} ({n})")
    wait_for(_drained, WAIT_S, workers[1])
    old = IndexGeneration.objects.get(state="live")

    settings.PLAZA_INDEX_BUILD_CHUNK = 5
    generation = generations.generation_build_fan_out()
    assert generation.chunks_total == 8
    workers[0].wait_for_pause(WAIT_S)  # it wrote a chunk's rows, and holds it undone
    workers[0].kill()
    generations.generation_builds_resume(silent_for=timedelta(0))

    def live() -> bool:
        generation.refresh_from_db()
        return generation.state == IndexGeneration.State.LIVE

    wait_for(live, WAIT_S * 2, workers[1])
    assert generation.chunks_done == generation.chunks_total == 8
    assert generation.posts_done == Post.objects.visible().count() == 40
    redone = IndexBuildChunk.objects.filter(generation=generation, attempts__gt=1)
    assert redone.count() >= 1  # the killed worker's chunk, done again
    old.refresh_from_db()
    assert old.state == IndexGeneration.State.RETIRED
    hits = _search(webs[1], token, "seals ferry pier")
    assert hits and Post.objects.get(pk=hits[0][0]).text.startswith("Harbour seals")
