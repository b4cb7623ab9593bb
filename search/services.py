"""Writes of the search index: live sync, reconcile, rebuilds (new generations), BM25 builds.

Live sync. Every change to a post (import, API, admin) calls `index_request(post_ids=...)`
inside its transaction: an `IndexQueueEntry` per post is written with the change, and
once the transaction commits an `index_flush` task goes to the `index` queue. The flush
takes everything queued (so posts that arrive while one batch is being embedded share the
next encode and commit), embeds the visible posts, removes the hidden, deleted and
vanished ones, commits the index, and only then deletes the entries it handled. A worker
killed mid-batch leaves the entries in place for the next flush.

Reconcile diffs the database's visible posts (id and tag, a hash of what was embedded)
against the index's entries and queues every difference: missing, stale, removed.

Rebuild fills a new generation beside the live one, with the configured embedding model,
then swaps it in and re-queues whatever changed during the build.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Min
from django.utils import timezone
from django.utils.text import slugify

from ml.bm25 import BM25Index
from ml.index import SegmentedIndex
from ml.language import detect_language
from posts.models import Post
from search import indexes
from search.models import IndexGeneration, IndexQueueEntry

logger = logging.getLogger(__name__)

# Retired generations stay on disk this long (readers may still have them open).
RETIRED_KEEP = timedelta(hours=1)
BUILD_QUEUE_MARGIN = timedelta(minutes=5)


# --- queueing -----------------------------------------------------------------------------


def index_request(*, post_ids: Iterable[int]) -> int:
    """Queue posts for the index with the caller's transaction; flush after it commits."""
    now = timezone.now()
    entries = [IndexQueueEntry(post_id=pk, enqueued_at=now) for pk in set(post_ids)]
    if not entries:
        return 0
    IndexQueueEntry.objects.bulk_create(entries, batch_size=2000)
    transaction.on_commit(index_flush_enqueue)
    return len(entries)


def index_flush_enqueue() -> None:
    """Send a flush to the index queue. A broker outage loses nothing: the entries wait
    in the database for the next flush or reconcile."""
    from search.tasks import index_flush as index_flush_task

    try:
        index_flush_task.apply_async(queue="index")
    except Exception:  # noqa: BLE001 - any broker failure; the outbox keeps the change
        logger.exception("could not enqueue an index flush; queued posts wait for the next one")


# --- generations --------------------------------------------------------------------------


def _generation_name(model: str) -> str:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    model_slug = slugify(model.rsplit("/", 1)[-1].removeprefix("bundled:"))[:30]
    return f"g{stamp}-{model_slug}-{time.time_ns() % 10**6:06d}"


def generation_live_ensure() -> IndexGeneration:
    """The live generation, creating an empty one with the configured model if none is."""
    generation = indexes.live_generation(fresh=True)
    if generation is not None:
        return generation
    model = settings.PLAZA_EMBED_MODEL
    dim = indexes.encoder_for(model).dim
    name = _generation_name(model)
    folder = indexes.generation_folder(name)
    # The empty index is on disk before the row says live, so a reader that sees the row
    # always finds an index to open (it used to find a bare folder until the first flush).
    SegmentedIndex.open(folder / "vectors", dim, config=indexes.index_config()).close()
    try:
        with transaction.atomic():
            IndexGeneration.objects.create(
                name=name,
                embed_model=model,
                dim=dim,
                state=IndexGeneration.State.LIVE,
                activated_at=timezone.now(),
            )
    except IntegrityError:  # another process made one first
        shutil.rmtree(folder, ignore_errors=True)
    return indexes.live_generation(fresh=True)


# --- the flush ----------------------------------------------------------------------------


@dataclass
class FlushReport:
    generation: str = ""
    upserted: int = 0
    removed: int = 0
    batches: int = 0
    lag_s: float = 0.0  # oldest change in the last batch -> its commit
    more: bool = False  # stopped on the time budget with entries left


def _visible_rows(post_ids: list[int]) -> list[dict]:
    return list(
        Post.objects.visible()
        .filter(pk__in=post_ids)
        .values("id", "text", "created_at", "content_hash")
    )


def _embed_rows(index, encoder, rows: list[dict]) -> None:
    ids = np.fromiter((r["id"] for r in rows), np.int64, len(rows))
    ts = np.fromiter((int(r["created_at"].timestamp()) for r in rows), np.int64, len(rows))
    tags = np.fromiter(
        (indexes.tag_of(r["content_hash"], int(r["created_at"].timestamp())) for r in rows),
        np.int64,
        len(rows),
    )
    vectors = encoder.encode([r["text"] for r in rows])  # (n, d)
    index.upsert(ids, vectors, ts, tags)


def index_flush(*, time_budget_s: float | None = None) -> FlushReport:
    """Apply the queued changes to the live generation, a batch at a time (see module doc)."""
    budget = settings.PLAZA_INDEX_FLUSH_BUDGET_S if time_budget_s is None else time_budget_s
    started = time.monotonic()
    report = FlushReport()
    if not IndexQueueEntry.objects.exists():
        return report
    generation = generation_live_ensure()
    report.generation = generation.name
    index = indexes.writer_for(generation)
    encoder = indexes.encoder_for(generation.embed_model)
    _wait_for_batch_window()
    while True:
        entries = list(
            IndexQueueEntry.objects.order_by("id").values_list("id", "post_id", "enqueued_at")[
                : settings.PLAZA_INDEX_BATCH
            ]
        )
        if not entries:
            break
        t0 = time.monotonic()
        post_ids = sorted({post_id for _, post_id, _ in entries})
        rows = _visible_rows(post_ids)
        if rows:
            _embed_rows(index, encoder, rows)
        gone = sorted(set(post_ids) - {r["id"] for r in rows})
        index.delete(gone)
        index.commit()
        IndexQueueEntry.objects.filter(id__in=[entry_id for entry_id, _, _ in entries]).delete()
        now = timezone.now()
        report.lag_s = (now - min(at for _, _, at in entries)).total_seconds()
        report.upserted += len(rows)
        report.removed += len(gone)
        report.batches += 1
        IndexGeneration.objects.filter(pk=generation.pk).update(
            last_flush_at=now,
            last_flush_posts=len(post_ids),
            last_flush_ms=(time.monotonic() - t0) * 1000,
            last_flush_lag_s=report.lag_s,
            flushed_posts=F("flushed_posts") + len(rows) + len(gone),
        )
        if time.monotonic() - started > budget:
            report.more = IndexQueueEntry.objects.exists()
            break
        bm25_refresh_request(generation=generation, schedule=False)  # a long flush stays fresh
    if report.batches:
        logger.info("index flush: %s", asdict(report))
        bm25_refresh_request(generation=generation)
    if report.more:  # yield the worker to other tasks, then carry on
        transaction.on_commit(index_flush_enqueue)
    return report


def _wait_for_batch_window() -> None:
    """Let the batch fill: changes queued within PLAZA_INDEX_BATCH_WINDOW_MS of the oldest
    waiting one share its encode and commit (a busy worker batches without waiting)."""
    window_s = settings.PLAZA_INDEX_BATCH_WINDOW_MS / 1000
    oldest = IndexQueueEntry.objects.aggregate(oldest=Min("enqueued_at"))["oldest"]
    if oldest is not None and window_s > 0:
        waited = (timezone.now() - oldest).total_seconds()
        if waited < window_s:
            time.sleep(window_s - waited)


# --- BM25 ---------------------------------------------------------------------------------


def bm25_refresh_request(*, generation: IndexGeneration, schedule: bool = True) -> None:
    """Rebuild BM25 now if the last build is older than PLAZA_BM25_REFRESH_S, else (with
    `schedule`) send a refresh task for when it will be."""
    generation.refresh_from_db(fields=["bm25_built_at"])
    interval = settings.PLAZA_BM25_REFRESH_S
    since = (
        (timezone.now() - generation.bm25_built_at).total_seconds()
        if generation.bm25_built_at
        else None
    )
    if since is None or since >= interval:
        bm25_rebuild(generation=generation)
        return
    if not schedule:
        return
    from search.tasks import index_bm25_refresh as index_bm25_refresh_task

    try:
        index_bm25_refresh_task.apply_async((generation.pk,), countdown=interval - since)
    except Exception:  # noqa: BLE001 - the next flush asks again
        logger.exception("could not schedule a BM25 refresh")


def bm25_refresh(*, generation_id: int) -> bool:
    """Rebuild BM25 if posts changed since its last build; returns whether it did."""
    generation = IndexGeneration.objects.filter(pk=generation_id).first()
    if generation is None or generation.state not in {"live", "building"}:
        return False
    if generation.bm25_built_at and (
        generation.last_flush_at is None or generation.last_flush_at <= generation.bm25_built_at
    ):
        return False
    bm25_rebuild(generation=generation)
    return True


def bm25_build(*, progress: Callable[[int], None] | None = None) -> BM25Index:
    """BM25 over every visible post, from the database (the source of truth)."""
    ids, texts, ts, langs, tags = [], [], [], [], []
    rows = (
        Post.objects.visible()
        .order_by("id")
        .values_list("id", "text", "created_at", "lang", "content_hash")
    )
    for pk, text, created_at, lang, content_hash in rows.iterator(chunk_size=5000):
        ids.append(pk)
        texts.append(text)
        ts.append(int(created_at.timestamp()))
        langs.append(lang or detect_language(text) or "")
        tags.append(indexes.tag_of(content_hash, ts[-1]))
        if progress is not None and len(ids) % 5000 == 0:
            progress(5000)
    return BM25Index.build(ids, texts, ts, langs, tags=tags)


def bm25_rebuild(*, generation: IndexGeneration) -> None:
    started_at = timezone.now()
    t0 = time.monotonic()
    bm25 = bm25_build()
    indexes.bm25_publish(indexes.generation_folder(generation.name), bm25, built_from=started_at)
    IndexGeneration.objects.filter(pk=generation.pk).update(
        bm25_built_at=started_at, bm25_build_ms=(time.monotonic() - t0) * 1000
    )
    logger.info(
        "bm25 rebuilt for %s: %d posts in %.0f ms",
        generation.name,
        len(bm25),
        (time.monotonic() - t0) * 1000,
    )


# --- reconcile ----------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    generation: str = ""
    posts: int = 0  # visible posts in the database
    vectors: int = 0  # live vectors in the index
    missing: list[int] = field(default_factory=list)  # visible, not indexed
    stale: list[int] = field(default_factory=list)  # indexed from other text or time
    removed: list[int] = field(default_factory=list)  # indexed, no longer visible
    queued: int = 0

    def summary(self) -> dict:
        return {
            "generation": self.generation,
            "posts": self.posts,
            "vectors": self.vectors,
            "missing": len(self.missing),
            "stale": len(self.stale),
            "removed": len(self.removed),
            "queued": self.queued,
        }


def index_reconcile() -> ReconcileReport:
    """Diff the visible posts against the live index; queue every difference for repair."""
    generation = generation_live_ensure()
    index = (
        indexes.writer_for(generation)
        if indexes.holds_writer(generation.name)
        else indexes.reader_for(generation).index
    )
    indexed_ids, indexed_tags = index.entries()
    rows = Post.objects.visible().order_by("id").values_list("id", "content_hash", "created_at")
    db_ids, db_tags = [], []
    for pk, content_hash, created_at in rows.iterator(chunk_size=10000):
        db_ids.append(pk)
        db_tags.append(indexes.tag_of(content_hash, int(created_at.timestamp())))
    db_ids_arr, db_tags_arr = np.asarray(db_ids, np.int64), np.asarray(db_tags, np.int64)
    report = ReconcileReport(
        generation=generation.name, posts=len(db_ids), vectors=len(indexed_ids)
    )
    report.missing = np.setdiff1d(db_ids_arr, indexed_ids).tolist()
    report.removed = np.setdiff1d(indexed_ids, db_ids_arr).tolist()
    both, in_db, in_index = np.intersect1d(db_ids_arr, indexed_ids, return_indices=True)
    report.stale = both[db_tags_arr[in_db] != indexed_tags[in_index]].tolist()
    with transaction.atomic():
        report.queued = index_request(post_ids=[*report.missing, *report.stale, *report.removed])
    IndexGeneration.objects.filter(pk=generation.pk).update(
        reconciled_at=timezone.now(), reconcile_report=report.summary()
    )
    if report.queued:
        logger.warning("reconcile queued repairs: %s", report.summary())
    return report


# --- rebuild ------------------------------------------------------------------------------


def generation_build(
    *,
    model: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IndexGeneration:
    """Build a complete new generation from the visible posts and swap it in.

    Search keeps reading the live generation until the swap; changes made during the
    build are re-queued afterwards, so the new generation misses nothing.
    `progress(done, total)` is called as batches finish.
    """
    model = model or settings.PLAZA_EMBED_MODEL
    encoder = indexes.encoder_for(model)
    posts = Post.objects.visible().order_by("id")
    total = posts.count()
    generation = IndexGeneration.objects.create(
        name=_generation_name(model), embed_model=model, dim=encoder.dim, posts_total=total
    )
    folder = indexes.generation_folder(generation.name)
    started_at = timezone.now()
    try:
        index = indexes.SegmentedIndex.open(
            folder / "vectors", encoder.dim, config=indexes.index_config()
        )
        done = 0
        batch = settings.PLAZA_INDEX_BATCH
        rows = posts.values("id", "text", "created_at", "content_hash")
        chunk: list[dict] = []
        for row in rows.iterator(chunk_size=batch):
            chunk.append(row)
            if len(chunk) == batch:
                done = _build_chunk(index, encoder, chunk, generation, done, total, progress)
                chunk = []
        if chunk:
            done = _build_chunk(index, encoder, chunk, generation, done, total, progress)
        index.commit()
        index.close()
        bm25_started_at = timezone.now()
        bm25 = bm25_build()
        indexes.bm25_publish(folder, bm25, built_from=bm25_started_at)
    except BaseException as exc:
        IndexGeneration.objects.filter(pk=generation.pk).update(
            state=IndexGeneration.State.FAILED, error=f"{type(exc).__name__}: {exc}"
        )
        shutil.rmtree(folder, ignore_errors=True)
        raise
    with transaction.atomic():
        IndexGeneration.objects.filter(state=IndexGeneration.State.LIVE).update(
            state=IndexGeneration.State.RETIRED
        )
        IndexGeneration.objects.filter(pk=generation.pk).update(
            state=IndexGeneration.State.LIVE,
            activated_at=timezone.now(),
            bm25_built_at=started_at,
            posts_done=done,
        )
        # Changes queued before the build began are in it already (with a margin for a
        # transaction that was open while the build read the table).
        IndexQueueEntry.objects.filter(enqueued_at__lt=started_at - BUILD_QUEUE_MARGIN).delete()
    indexes.forget_live()
    # Whatever changed while the build ran (and slipped past the queue) is queued now.
    index_reconcile()
    generations_prune()
    generation.refresh_from_db()
    logger.info("generation %s is live: %d posts, model %s", generation.name, done, model)
    return generation


def _build_chunk(index, encoder, chunk, generation, done, total, progress) -> int:
    _embed_rows(index, encoder, chunk)
    index.commit()
    done += len(chunk)
    IndexGeneration.objects.filter(pk=generation.pk).update(posts_done=done)
    if progress is not None:
        progress(done, total)
    return done


def generations_prune() -> list[str]:
    """Remove the folders of generations retired over RETIRED_KEEP ago and of failed ones."""
    removed = []
    cutoff = timezone.now() - RETIRED_KEEP
    for generation in IndexGeneration.objects.filter(
        state__in=[IndexGeneration.State.RETIRED, IndexGeneration.State.FAILED]
    ):
        folder = indexes.generation_folder(generation.name)
        if folder.exists() and (
            generation.state == IndexGeneration.State.FAILED or generation.created_at < cutoff
        ):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(generation.name)
    return removed


@transaction.atomic
def generation_delete(*, generations: Iterable[IndexGeneration]) -> int:
    """Delete retired or failed generations: their rows and their folders. The live one and
    one being built are never deleted; returns how many were."""
    doomed = [g for g in generations if g.state not in {"live", "building"}]
    for generation in doomed:
        folder = indexes.generation_folder(generation.name)
        transaction.on_commit(lambda folder=folder: shutil.rmtree(folder, ignore_errors=True))
    IndexGeneration.objects.filter(pk__in=[g.pk for g in doomed]).delete()
    return len(doomed)


def generation_model_check() -> bool:
    """When the embedding model setting differs from the live generation's, queue a
    rebuild with the new model (once: not while one is being built). Returns whether it
    queued one. Search keeps using the live generation, with its own model, meanwhile."""
    live = indexes.live_generation(fresh=True)
    model = settings.PLAZA_EMBED_MODEL
    if live is None or live.embed_model == model:
        return False
    if IndexGeneration.objects.filter(state=IndexGeneration.State.BUILDING).exists():
        return False
    from search.tasks import generation_build as generation_build_task

    logger.warning(
        "embedding model changed (%s -> %s): building a new generation", live.embed_model, model
    )
    generation_build_task.apply_async((model,))
    return True


def index_compact() -> int:
    """Rebuild sealed segments heavy with tombstones (beat, on the index queue)."""
    generation = indexes.live_generation(fresh=True)
    if generation is None:
        return 0
    return indexes.writer_for(generation).compact()
