"""Search over a small real index (the bundled encoder, the configured search backend):
filters and operators against a brute-force filter over the database, sync, reconcile,
generations. Run under each backend (README, "Tests"); a test of one backend's own
machinery says which."""

from __future__ import annotations

import itertools
import random
import re
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest

from posts.ingest import PostRow, post_content_hash
from posts.models import Post
from posts.services import post_delete, post_set_hidden, post_update, post_upsert_many
from search import indexes, selectors
from search.backends import search_backend
from search.models import IndexGeneration, IndexQueueEntry
from search.services import generations, index_sync, reconcile

pytestmark = pytest.mark.django_db

AUTHORS = ["el_pais", "BBCMundo", "airline_fan"]
TOPICS = {
    "en": [
        "The flight was delayed three hours at the airport",
        "Great coffee and friendly crew on the morning flight",
        "Lost luggage again, customer service never answers",
        "The new stadium opens with a football match tonight",
        "Vaccines for the flu are available at every pharmacy",
    ],
    "es": [
        "El vuelo salió con tres horas de retraso del aeropuerto",
        "La vacuna contra la gripe llega a todas las farmacias",
        "El partido de fútbol terminó en empate en el estadio",
        "Sube el precio del café por la sequía en Colombia",
        "Médicos piden una tercera dosis para los mayores",
    ],
}
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _row(n: int, author: str, lang: str, text: str, day: int) -> PostRow:
    return PostRow(
        source="test",
        external_id=str(n),
        author=author,
        text=text,
        lang=lang,
        created_at=BASE + timedelta(days=day),
        likes=n,
        reposts=0,
        replies=0,
    )


@pytest.fixture
def corpus(index_dir):
    """40 posts: every (author, lang, topic) mix, a day apart, flushed into the index."""
    rng = random.Random(7)
    rows = []
    for n in range(40):
        lang = "en" if n % 2 else "es"
        text = TOPICS[lang][n % 5] + f" (nota {n})"
        rows.append(_row(n, AUTHORS[n % 3], lang, text, day=rng.randrange(0, 90)))
    post_upsert_many(rows=rows)
    index_sync.index_flush()
    return {p.external_id: p for p in Post.objects.select_related("author")}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _has_phrase(text: str, phrase: str) -> bool:
    parts = [re.escape(w) for w in re.findall(r"\w+", _fold(phrase))]
    return bool(re.search(r"(?<!\w)" + r"\W+".join(parts) + r"(?!\w)", _fold(text)))


def brute_force(posts, *, authors=(), lang=None, since=None, until=None, phrases=(), excluded=()):
    """The posts a filtered query may return, computed the slow, obvious way."""
    return {
        p.pk
        for p in posts
        if p.is_visible
        and (not authors or p.author.handle.lower() in {a.lower() for a in authors})
        and (lang is None or p.lang == lang)
        and (since is None or p.created_at >= since)
        and (until is None or p.created_at < until)
        and all(_has_phrase(p.text, ph) for ph in phrases)
        and not any(_has_phrase(p.text, x) for x in excluded)
    }


def _query(words, *, authors=(), lang=None, since=None, until=None, phrases=(), excluded=()):
    parts = [words]
    parts += [f"from:{a}" for a in authors]
    parts += [f"lang:{lang}"] if lang else []
    parts += [f"since:{since.date()}"] if since else []
    parts += [f"until:{until.date()}"] if until else []
    parts += [f'"{p}"' for p in phrases]
    parts += [f"-{x}" if " " not in x else f'-"{x}"' for x in excluded]
    return " ".join(parts)


@pytest.mark.integration
def test_filtered_queries_return_exactly_the_matching_posts(corpus):
    """Every mix of operators returns all and only the posts the brute-force filter keeps
    (k above the corpus size), and a small k returns min(k, matches) of them."""
    posts = list(Post.objects.select_related("author"))
    post_set_hidden(post_ids=[corpus["3"].pk], hidden=True)
    post_delete(post_ids=[corpus["4"].pk])
    index_sync.index_flush()
    posts = list(Post.objects.select_related("author"))
    day = BASE + timedelta(days=30)
    cases = itertools.product(
        [(), ("el_pais",), ("BBCMUNDO", "airline_fan")],
        [None, "es"],
        [(None, None), (day, None), (None, day), (BASE + timedelta(days=10), day)],
        [(), ("tres horas",), ("the flight",)],
        [(), ("vacuna",), ("football match",)],
    )
    checked = 0
    for authors, lang, (since, until), phrases, excluded in cases:
        filters = {
            "authors": authors,
            "lang": lang,
            "since": since,
            "until": until,
            "phrases": phrases,
            "excluded": excluded,
        }
        expected = brute_force(posts, **filters)
        query = _query("flight delayed vuelo", **filters)
        found = selectors.search_posts(query=query, k=100)
        assert {h.post.pk for h in found.hits} == expected, query
        small = selectors.search_posts(query=query, k=3)
        assert len(small.hits) == min(3, len(expected)), query
        assert {h.post.pk for h in small.hits} <= expected, query
        checked += bool(expected)
    assert checked > 40  # most combinations have matches: the test exercises real pages


@pytest.mark.integration
def test_hidden_and_deleted_posts_never_appear_even_before_the_index_catches_up(corpus):
    """A post hidden or deleted a moment ago is left out although its vector is still in
    the index; the page is refilled from deeper candidates."""
    target = corpus["0"]
    query = target.text
    assert selectors.search_posts(query=query, k=1).hits[0].post.pk == target.pk
    post_set_hidden(post_ids=[target.pk], hidden=True)  # no flush: the index lags
    results = selectors.search_posts(query=query, k=5)
    assert target.pk not in {h.post.pk for h in results.hits}
    assert len(results.hits) == 5
    index_sync.index_flush()
    assert target.pk not in search_backend().ids(indexes.live_generation(fresh=True))


@pytest.mark.integration
def test_edit_is_found_by_its_new_text_not_its_old(corpus):
    """After an edit and a flush, the new words find the post and the old ones do not."""
    post = corpus["1"]
    old = "Great coffee and friendly crew"
    post_update(post=post, changes={"text": "Zeppelin voyage over Patagonia glaciers"})
    index_sync.index_flush()
    hits = selectors.search_posts(query="zeppelin patagonia", k=3).hits
    assert hits[0].post.pk == post.pk and "bm25" in hits[0].found_by
    old_hits = selectors.search_posts(query=f'"{old}"', k=10).hits
    assert post.pk not in {h.post.pk for h in old_hits}


@pytest.mark.integration
def test_pages_are_disjoint_and_ordered(corpus):
    """offset pages continue one another without repeats, and has_more says when to stop."""
    seen = []
    offset = 0
    while True:
        page = selectors.search_posts(query="flight", k=7, offset=offset)
        seen += [h.post.pk for h in page.hits]
        if not page.has_more:
            break
        offset = page.next_offset
    assert len(seen) == len(set(seen)) == Post.objects.visible().count()


@pytest.mark.integration
def test_filters_alone_list_matching_posts_newest_first(corpus):
    """A query of operators only is a filtered timeline, newest first."""
    hits = selectors.search_posts(query="from:el_pais lang:es", k=100).hits
    expected = sorted(
        (p for p in corpus.values() if p.author.handle == "el_pais" and p.lang == "es"),
        key=lambda p: (p.created_at, p.pk),
        reverse=True,
    )
    assert [h.post.pk for h in hits] == [p.pk for p in expected]


@pytest.mark.integration
def test_matched_terms_and_methods_are_reported(corpus):
    """Each hit says which methods found it and which query words it contains."""
    hit = selectors.search_posts(query="tercera dosis médicos", k=1).hits[0]
    assert "tercera" in hit.post.text
    assert set(hit.found_by) == {"dense", "bm25"}
    assert {"tercera", "dosis", "medicos"} <= set(hit.matched_terms)


@pytest.mark.integration
def test_reconcile_repairs_missing_stale_and_removed(corpus):
    """Changes that bypassed the queue are found and repaired both ways."""
    generation = indexes.live_generation(fresh=True)
    backend = search_backend()
    missing, stale, removed = corpus["5"], corpus["6"], corpus["7"]
    backend.delete(generation, [missing.pk])  # lost from the index
    backend.commit(generation)
    Post.objects.filter(pk=stale.pk).update(
        text="Quantum kittens", content_hash=post_content_hash(lang="en", text="Quantum kittens")
    )  # changed behind the services' back
    Post.objects.filter(pk=removed.pk).update(is_hidden=True)
    IndexQueueEntry.objects.all().delete()
    report = reconcile.index_reconcile()
    assert (report.missing, report.stale, report.removed) == (
        [missing.pk],
        [stale.pk],
        [removed.pk],
    )
    index_sync.index_flush()
    again = reconcile.index_reconcile()
    assert (again.missing, again.stale, again.removed, again.queued) == ([], [], [], 0)
    assert selectors.search_posts(query="quantum kittens", k=1).hits[0].post.pk == stale.pk


@pytest.mark.integration
def test_a_failed_flush_keeps_its_queue_entries(corpus, monkeypatch):
    """A worker dying mid-batch (before the index commit) leaves the changes queued; the
    next flush applies them."""
    post = corpus["8"]
    post_update(post=post, changes={"text": "Volcanic eruption lights up Iceland"})
    queued = IndexQueueEntry.objects.count()

    def die(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(search_backend(), "upsert", die)
    with pytest.raises(SystemExit):
        index_sync.index_flush()
    assert IndexQueueEntry.objects.count() == queued
    monkeypatch.undo()
    indexes.close_all()  # a new process: reopens from disk
    index_sync.index_flush()
    assert not IndexQueueEntry.objects.exists()
    assert selectors.search_posts(query="volcanic iceland", k=1).hits[0].post.pk == post.pk


@pytest.mark.integration
def test_rebuild_swaps_in_a_new_generation_and_keeps_search_up(corpus):
    """reindex builds beside the live generation, swaps, and re-queues what changed."""
    old = indexes.live_generation(fresh=True)
    new = generations.generation_build()
    assert new.state == IndexGeneration.State.LIVE and new.name != old.name
    old.refresh_from_db()
    assert old.state == IndexGeneration.State.RETIRED
    assert new.posts_done == Post.objects.visible().count()
    indexes.forget_live()
    found = selectors.search_posts(query="tercera dosis", k=1)
    assert found.generation == new.name and "tercera" in found.hits[0].post.text
    assert reconcile.index_reconcile().summary()["queued"] == 0


@pytest.mark.integration
def test_similar_posts_leave_out_the_post_itself(corpus):
    """Similar posts are other visible posts, the closest first (same topic here)."""
    post = corpus["10"]
    similar = selectors.similar_posts(post=post, k=3)
    assert len(similar) == 3 and post.pk not in {p.pk for p in similar}
    topic = post.text.split(" (nota")[0]
    assert similar[0].text.startswith(topic)


def test_no_index_yet_returns_nothing(index_dir):
    """Before the first flush there is no generation: search answers empty, not an error."""
    results = selectors.search_posts(query="anything", k=5)
    assert results.hits == [] and results.generation is None
    assert selectors.index_figures()["generation"] is None


@pytest.mark.integration
def test_a_new_live_generation_is_readable_before_its_first_flush(index_dir):
    """The live row appears only once its empty index is on disk: a reader (the web
    process, the sync test's poll) never finds a live generation without an index."""
    generation = generations.generation_live_ensure()
    assert generation.state == IndexGeneration.State.LIVE
    assert search_backend().size(generation) == 0
    assert selectors.search_posts(query="anything", k=5).hits == []
    assert generations.generation_live_ensure().name == generation.name  # made once
    assert IndexGeneration.objects.count() == 1
    if search_backend().name == "faiss":
        assert [p.name for p in index_dir.joinpath("index").iterdir()] == [generation.name]


@pytest.mark.integration
@pytest.mark.backend("faiss")
def test_posts_newer_than_the_bm25_build_match_by_their_words_at_once(
    corpus, settings, monkeypatch
):
    """Between BM25 rebuilds, a new post is scored by its words on the build's scale (so
    it ranks first for its own text), an edited post by its new words only, and a phrase
    filter sees both."""
    from search.tasks import index as tasks

    settings.PLAZA_BM25_REFRESH_S = 3600  # no rebuild during this test
    monkeypatch.setattr(tasks.index_bm25_refresh, "apply_async", lambda *args, **kw: None)
    post_upsert_many(
        rows=[_row(100, "el_pais", "es", "Un eclipse total de sol oscurece Lisboa al mediodía", 5)]
    )
    edited = corpus["9"]
    old_words = edited.text.split(" (nota")[0]
    post_update(post=edited, changes={"text": "Una tormenta solar deja auroras sobre Madrid"})
    index_sync.index_flush()
    new = Post.objects.get(external_id="100")
    bm25 = indexes.reader_for(indexes.live_generation(fresh=True)).bm25
    assert new.pk not in set(bm25.ids.tolist())  # the build predates it

    hit = selectors.search_posts(query="eclipse total de sol en Lisboa", k=1).hits[0]
    assert hit.post.pk == new.pk and set(hit.found_by) == {"dense", "bm25"}
    by_words = selectors.search_posts(query="auroras tormenta solar", k=5, methods=("bm25",))
    assert [h.post.pk for h in by_words.hits] == [edited.pk]
    stale = selectors.search_posts(query=old_words, k=50, methods=("bm25",))
    assert edited.pk not in {h.post.pk for h in stale.hits}
    phrased = selectors.search_posts(query='"eclipse total" lisboa', k=5)
    assert [h.post.pk for h in phrased.hits] == [new.pk]


@pytest.mark.integration
def test_a_stalled_rebuild_is_resumed_chunk_by_chunk_and_finished_once(
    corpus, settings, monkeypatch
):
    """The stall sweep resends the chunks nobody finished, then (all done) the finish; a
    chunk done twice counts once, and a second finish swaps nothing."""
    from search.tasks import index as tasks

    settings.PLAZA_INDEX_BUILD_CHUNK = 10
    old = indexes.live_generation(fresh=True)
    generation = generations.generation_build_start()
    chunk_ids = list(generation.chunks.order_by("number").values_list("id", flat=True))
    assert len(chunk_ids) == generation.chunks_total >= 3
    sent = []
    monkeypatch.setattr(tasks.generation_build_chunk, "apply_async", lambda a: sent.append(a))
    monkeypatch.setattr(tasks.generation_build_finish, "apply_async", lambda a: sent.append(a))
    for chunk_id in chunk_ids[:-1]:
        assert generations.generation_build_chunk(chunk_id=chunk_id) is False
    assert generations.generation_build_chunk(chunk_id=chunk_ids[0]) is False  # a redelivery
    assert generations.generation_builds_resume(silent_for=timedelta(hours=1)) == 0  # not stalled
    assert generations.generation_builds_resume(silent_for=timedelta(0)) == 1
    assert sent == [(chunk_ids[-1],)]
    assert generations.generation_build_chunk(chunk_id=chunk_ids[-1]) is True  # the last
    generation.refresh_from_db()
    assert generation.posts_done == Post.objects.visible().count()
    assert generations.generation_builds_resume(silent_for=timedelta(0)) == 1
    assert sent[-1] == (generation.pk,)  # the finish
    assert generations.generation_build_finish(generation_id=generation.pk).state == "live"
    assert generations.generation_build_finish(generation_id=generation.pk) is None
    old.refresh_from_db()
    assert old.state == IndexGeneration.State.RETIRED
    assert IndexGeneration.objects.filter(state="live").get().pk == generation.pk


def test_each_backend_has_its_own_live_generation(index_dir, settings):
    """After PLAZA_SEARCH_BACKEND changes, the other backend's live generation is not
    read (its index is elsewhere): search answers empty until this backend has one, and
    one generation per backend may be live."""
    other = "postgres" if search_backend().name == "faiss" else "faiss"
    IndexGeneration.objects.create(
        name="g-other", backend=other, embed_model="m", dim=384, state="live"
    )
    indexes.forget_live()
    assert indexes.live_generation(fresh=True) is None
    results = selectors.search_posts(query="anything", k=5)
    assert results.hits == [] and results.generation is None
    mine = IndexGeneration.objects.create(
        name="g-mine", backend=search_backend().name, embed_model="m", dim=384, state="live"
    )
    assert indexes.live_generation(fresh=True) == mine
