"""Reads for search: hybrid search with X-style filters, similar posts, answers, the ops
figures.

    results = search_posts(query='vacunas "tercera dosis" lang:es', k=10, offset=0)
    results.hits[0].post, .score, .found_by, .matched_terms

Filters are exact, on either search backend (search.backends): author, language and time
are the backend's own columns; phrases and excluded words come from its word index,
verified word by word on the posts' texts. Both methods search inside them, so a filtered
query returns the best matches among the matching posts, never a short page while more
exist. Every hit is loaded from the database and checked once more (visible, filters),
so a post hidden a moment ago, before the index caught up, never shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import numpy as np
from django.db.models import Count, Max, Min, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from ml.bm25 import contains_phrase, tokenize, words
from ml.hybrid import FusionConfig, HybridResult, hybrid_fuse, recency_boost
from ml.language import detect_language
from ops.registry import IndexFigures, JobRow, JobsReport
from posts.models import Author, Post
from search import indexes
from search.backends import Filters, SearchBackend, search_backend
from search.models import Answer, IndexGeneration, IndexQueueEntry
from search.query import ParsedQuery, parse_query

logger = logging.getLogger(__name__)

MIN_DEPTH = 100  # candidates each method contributes at least
MAX_K = 100


@dataclass
class SearchHit:
    post: Post
    score: float  # fused score (after the recency boost, when asked for)
    found_by: list[str]  # methods that retrieved it: "dense", "bm25"
    ranks: dict[str, int]
    method_scores: dict[str, float]  # cosine for dense, BM25 score for bm25
    matched_terms: list[str]  # the query's indexed words found in the post (folded)


@dataclass
class SearchResults:
    query: ParsedQuery
    hits: list[SearchHit] = field(default_factory=list)
    offset: int = 0
    k: int = 10
    has_more: bool = False
    generation: str | None = None
    query_lang: str | None = None
    weights: dict[str, float] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    terms: list[str] = field(default_factory=list)  # the query's indexed words, for highlighting

    @property
    def next_offset(self) -> int | None:
        return self.offset + len(self.hits) if self.has_more else None


def _author_ids(handles: list[str]) -> list[int]:
    match = Q()
    for handle in handles:
        match |= Q(handle__iexact=handle)
    return list(Author.objects.filter(match).values_list("id", flat=True))


def _filtered_posts(query: ParsedQuery) -> QuerySet[Post]:
    posts = Post.objects.visible()
    if query.authors:
        posts = posts.filter(author_id__in=_author_ids(query.authors))  # (author, created_at)
    if query.lang:
        posts = posts.filter(lang=query.lang)
    if query.since:
        posts = posts.filter(created_at__gte=query.since)
    if query.until:
        posts = posts.filter(created_at__lt=query.until)
    return posts


def _filters(query: ParsedQuery, backend: SearchBackend, generation: IndexGeneration) -> Filters:
    """The query's operators as the backend's filters (phrases and excluded words are
    looked up, and verified, once)."""
    filters = Filters(
        author_ids=_author_ids(query.authors) if query.authors else None,
        lang=query.lang or None,
        since=query.since,
        until=query.until,
    )
    for phrase in query.phrases:
        with_phrase = backend.phrase_ids(generation, phrase)
        filters.allow_ids = (
            with_phrase
            if filters.allow_ids is None
            else np.intersect1d(filters.allow_ids, with_phrase)
        )
    if query.excluded:
        filters.deny_ids = np.unique(
            np.concatenate([backend.phrase_ids(generation, x) for x in query.excluded])
        )
    return filters


def _passes(post: Post, query: ParsedQuery) -> bool:
    """The filters, checked on the loaded row (the index may lag the database by seconds)."""
    if query.authors and post.author.handle.lower() not in {a.lower() for a in query.authors}:
        return False
    if query.lang and post.lang != query.lang:
        return False
    if query.since and post.created_at < query.since:
        return False
    if query.until and post.created_at >= query.until:
        return False
    if query.phrases or query.excluded:
        text_words = words(post.text)
        if not all(contains_phrase(text_words, words(p)) for p in query.phrases):
            return False
        if any(contains_phrase(text_words, words(x)) for x in query.excluded):
            return False
    return True


def search_posts(
    *,
    query: str | ParsedQuery,
    k: int = 10,
    offset: int = 0,
    recency: bool = False,
    methods: tuple[str, ...] = ("dense", "bm25"),
    fusion: FusionConfig | None = None,
) -> SearchResults:
    """One page of the visible posts that best match `query` (see the module docstring).

    A query of filters alone lists the matching posts newest first.
    Raises search.query.QueryError for a malformed operator.
    """
    started = time.perf_counter()
    parsed = parse_query(query) if isinstance(query, str) else query
    k = max(1, min(int(k), MAX_K))
    offset = max(0, int(offset))
    results = SearchResults(query=parsed, offset=offset, k=k, terms=tokenize(parsed.text))
    generation = indexes.live_generation()
    if not parsed.text.strip():
        return _filters_only(parsed, results, started)
    if generation is None:
        return results
    backend = search_backend()
    results.generation = generation.name
    filters = _filters(parsed, backend, generation)
    results.timings_ms["filters"] = (time.perf_counter() - started) * 1000
    fusion = fusion or FusionConfig()
    depth = max(MIN_DEPTH, 2 * (offset + k))
    vector = None
    if "dense" in methods:
        vector = indexes.encoder_for(generation.embed_model).encode_queries([parsed.text])[0]
    while True:
        t0 = time.perf_counter()
        dense = lexical = None
        if vector is not None:
            dense = backend.dense(generation, vector, depth=depth, filters=filters)
        if "bm25" in methods:
            lexical = backend.lexical(generation, parsed.text, depth=depth, filters=filters)
        ranked = hybrid_fuse(
            parsed.text,
            dense=(dense.ids, dense.scores) if dense is not None and len(dense) else None,
            lexical=(lexical.ids, lexical.scores) if lexical is not None and len(lexical) else None,
            lexical_langs=lexical.langs if lexical is not None else (),
            encoder_languages=indexes.encoder_languages(generation.embed_model),
            depth=depth,
            config=fusion,
            detect=detect_language,
        )
        results.timings_ms["retrieve"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        hits = _load_hits(ranked, parsed, recency, fusion, results.terms, offset + k + 1)
        results.timings_ms["load"] = (time.perf_counter() - t0) * 1000
        if len(hits) >= offset + k + 1 or ranked.exhausted or depth >= 20_000:
            break
        depth *= 4  # the page came back short (posts removed since indexing): dig deeper
    results.query_lang, results.weights = ranked.query_lang, ranked.weights
    results.hits = hits[offset : offset + k]
    results.has_more = len(hits) > offset + k
    results.timings_ms["total"] = (time.perf_counter() - started) * 1000
    return results


def _load_hits(
    ranked: HybridResult,
    query: ParsedQuery,
    recency: bool,
    fusion: FusionConfig,
    terms: list[str],
    need: int,
) -> list[SearchHit]:
    """The first `need` candidates that are visible and pass the filters, best first.

    Rows load in fused order, a chunk at a time, until `need` pass (the recency boost
    reorders by time, so it loads them all)."""
    posts: dict[int, Post] = {}
    fused = []
    chunk = len(ranked.fused) if recency else max(2 * need, 20)
    for start in range(0, len(ranked.fused), chunk):
        part = ranked.fused[start : start + chunk]
        posts.update(Post.objects.visible().select_related("author").in_bulk([f.id for f in part]))
        fused += [f for f in part if f.id in posts and _passes(posts[f.id], query)]
        if len(fused) >= need:
            break
    if recency:
        stamps = {pk: post.created_at.timestamp() for pk, post in posts.items()}
        fused = recency_boost(fused, stamps, time.time(), fusion)
    wanted = set(terms)
    return [
        SearchHit(
            post=posts[f.id],
            score=f.score,
            found_by=sorted(f.ranks, key=lambda m: f.ranks[m]),
            ranks=f.ranks,
            method_scores={m: ranked.scores[m][f.id] for m in f.ranks},
            matched_terms=sorted(wanted.intersection(tokenize(posts[f.id].text))),
        )
        for f in fused[:need]
    ]


def _filters_only(query: ParsedQuery, results: SearchResults, started: float) -> SearchResults:
    posts = _filtered_posts(query).select_related("author").order_by("-created_at", "-id")
    hits: list[SearchHit] = []
    skipped = 0
    # Phrase and exclusion filters are checked row by row, newest first, until the page fills.
    for post in posts.iterator(chunk_size=200):
        if not _passes(post, query):
            continue
        if skipped < results.offset:
            skipped += 1
            continue
        if len(hits) == results.k:
            results.has_more = True
            break
        hits.append(SearchHit(post, 0.0, [], {}, {}, []))
    results.hits = hits
    results.timings_ms["total"] = (time.perf_counter() - started) * 1000
    return results


SIMILAR_MIN_COSINE = 0.3  # below this, "similar" would be noise in a small index
SIMILAR_POSTS = 5  # on a post's page


def similar_posts(*, post: Post, k: int = 5) -> list[Post]:
    """Visible posts closest in meaning to `post` (dense only, cosine >= SIMILAR_MIN_COSINE),
    itself and exact copies left out."""
    generation = indexes.live_generation()
    if generation is None:
        return []
    vector = indexes.encoder_for(generation.embed_model).encode([post.text])[0]  # (d,)
    nearest = search_backend().dense(generation, vector, depth=k + 10, filters=Filters())
    candidates = [
        int(i)
        for i, score in zip(nearest.ids, nearest.scores, strict=True)
        if i != post.pk and score >= SIMILAR_MIN_COSINE
    ]
    found = Post.objects.visible().select_related("author").in_bulk(candidates)
    similar = [found[i] for i in candidates if i in found and found[i].text != post.text]
    return similar[:k]


def similar_posts_panel(*, post: Post) -> dict | None:
    """The post page's "Similar posts" panel (posts.panels): up to SIMILAR_POSTS, or None
    when there are none (no index yet, or nothing close)."""
    similar = similar_posts(post=post, k=SIMILAR_POSTS)
    return {"similar": similar} if similar else None


def answer_for_reader(
    *, answer_id: UUID | str, user, session_answer_ids: Iterable[str]
) -> Answer | None:
    """The answer if this reader may read it: who asked for it (the signed-in user, or the
    browser session that created it, by `session_answer_ids`) or staff; None otherwise."""
    answer = Answer.objects.filter(pk=answer_id).first()
    allowed = answer is not None and (
        (user.is_authenticated and (user.is_staff or answer.user_id == user.pk))
        or str(answer.pk) in session_answer_ids
    )
    return answer if allowed else None


def answer_retrieved_posts(*, answer: Answer) -> dict[int, Post]:
    """The visible posts an answer read, by primary key, with their authors (a post
    deleted since is missing)."""
    return Post.objects.visible().select_related("author").in_bulk(answer.retrieved)


def index_figures() -> dict:
    """The ops figures: generations, vectors, segments, tombstones, freshness lag, queue."""
    queue = IndexQueueEntry.objects.aggregate(oldest=Min("enqueued_at"), newest=Max("enqueued_at"))
    now = timezone.now()
    lag = (now - queue["oldest"]).total_seconds() if queue["oldest"] else 0.0
    figures: dict = {
        "queued": IndexQueueEntry.objects.count(),
        "freshness_lag_s": round(max(0.0, lag), 3),
        "generation": None,
    }
    building = IndexGeneration.objects.served().filter(state=IndexGeneration.State.BUILDING).first()
    if building is not None:
        figures["building"] = {
            "name": building.name,
            "embed_model": building.embed_model,
            "posts_done": building.posts_done,
            "posts_total": building.posts_total,
        }
    generation = indexes.live_generation(fresh=True)
    if generation is None:
        return figures
    stats = search_backend().stats(generation)
    figures["generation"] = {
        "backend": search_backend().name,
        "name": generation.name,
        "embed_model": generation.embed_model,
        "configured_model": indexes.configured_model(),
        "dim": generation.dim,
        "activated_at": generation.activated_at,
        "last_flush_at": generation.last_flush_at,
        "last_flush_posts": generation.last_flush_posts,
        "last_flush_ms": round(generation.last_flush_ms, 1),
        "last_flush_lag_s": round(generation.last_flush_lag_s, 3),
        "bm25_docs": stats["lexical_docs"],
        "reconciled_at": generation.reconciled_at,
        "reconcile_report": generation.reconcile_report,
        **{key: value for key, value in stats.items() if key != "lexical_docs"},
    }
    if search_backend().name == "faiss":  # BM25 builds (postgres ranks the live table)
        figures["generation"]["bm25_built_at"] = generation.bm25_built_at
        figures["generation"]["bm25_build_ms"] = round(generation.bm25_build_ms, 1)
    return figures


# --- for ops: read through ops.registry (SearchConfig.ready()); ops imports nothing of search


def index_figures_for_ops() -> IndexFigures:
    """index_figures() in the shape the ops page, /metrics and /healthz read."""
    figures = index_figures()
    live = figures["generation"] or {}
    flushed = live.get("last_flush_at") is not None
    return IndexFigures(
        generation=live.get("name"),
        embed_model=live.get("embed_model", ""),
        vectors=live.get("vectors", 0),
        active_vectors=live.get("active_vectors", 0),
        sealed_segments=live.get("sealed_segments", 0),
        tombstones=live.get("tombstones", 0),
        bm25_documents=live.get("bm25_docs", 0),
        queued=figures["queued"],
        freshness_lag_s=figures["freshness_lag_s"],
        last_flush_at=live.get("last_flush_at"),
        last_flush_lag_s=live.get("last_flush_lag_s") if flushed else None,
        last_flush_posts=live.get("last_flush_posts", 0),
    )


def answer_jobs_report(*, failed_since: datetime, limit: int) -> JobsReport:
    """Answers for the ops page: rows by status, the open ones (oldest first) and those
    failed since `failed_since` (newest first), `limit` of each."""
    counts = dict.fromkeys(Answer.Status.values, 0)
    counts.update(Answer.objects.order_by().values_list("status").annotate(n=Count("id")))
    answers = Answer.objects.only("id", "status", "question", "error", "created_at", "updated_at")
    open_statuses = [Answer.Status.QUEUED, Answer.Status.RUNNING]
    running = answers.filter(status__in=open_statuses).order_by("created_at")[:limit]
    failed = answers.filter(status=Answer.Status.FAILED, updated_at__gte=failed_since)
    failed = failed.order_by("-updated_at")[:limit]
    return JobsReport(
        counts=counts,
        running=[_answer_job_row(answer) for answer in running],
        failed=[_answer_job_row(answer) for answer in failed],
    )


def _answer_job_row(answer: Answer) -> JobRow:
    return JobRow(
        id=str(answer.pk),
        status=answer.status,
        title=answer.question[:200],
        created_at=answer.created_at,
        updated_at=answer.updated_at,
        error=answer.error,
        admin_url=reverse("admin:search_answer_change", args=[answer.pk]),
    )
