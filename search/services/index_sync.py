"""Live sync: every change to a post reaches the live index within seconds.

posts announces each change (`posts.signals.posts_changed`, sent inside its write
transaction) and search, listening since `SearchConfig.ready()`, calls
`index_request(post_ids=...)`: an `IndexQueueEntry` per post is written with the change,
and once the transaction commits an `index_flush` task goes to the `index` queue. The
flush takes everything queued (so posts that arrive while one batch is being embedded
share the next encode and commit), embeds the visible posts, removes the hidden, deleted
and vanished ones, commits the index, and only then deletes the entries it handled. A
worker killed mid-batch leaves the entries in place for the next flush.

With the `postgres` backend any number of index workers flush at once: each claims its
batch of entries (`FOR UPDATE SKIP LOCKED`), embeds the posts, and writes them in the
same transaction that deletes the entries. Before writing it re-reads the posts under a
share lock: a post changed since it was read is left to its own, newer entry, so a slow
worker never writes an old text over a new one, and a change waits only for the write.

Reconcile (search.services.reconcile) repairs what slipped past the queue; a rebuild
(search.services.generations) fills a new generation beside the live one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min
from django.utils import timezone

from posts.models import Post
from search import indexes
from search.backends import POST_ROW_FIELDS, SearchBackend, search_backend
from search.models import IndexGeneration, IndexQueueEntry
from search.services.generations import generation_live_ensure

logger = logging.getLogger(__name__)


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
    from search.tasks.index import index_flush as index_flush_task

    try:
        index_flush_task.apply_async(queue="index")
    except Exception:  # noqa: BLE001 - any broker failure; the outbox keeps the change
        logger.exception("could not enqueue an index flush; queued posts wait for the next one")


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
    return list(Post.objects.visible().filter(pk__in=post_ids).values(*POST_ROW_FIELDS))


def _claim(backend: SearchBackend) -> list[tuple[int, int, object]]:
    """The next batch of entries: (id, post_id, enqueued_at). With several writers, each
    takes entries no other holds (the caller's transaction keeps them until it ends)."""
    entries = IndexQueueEntry.objects.order_by("id")
    if backend.concurrent_writers:
        entries = entries.select_for_update(skip_locked=True)
    return list(entries.values_list("id", "post_id", "enqueued_at")[: settings.PLAZA_INDEX_BATCH])


def _unchanged(rows: list[dict], gone: list[int]) -> tuple[list[dict], list[int]]:
    """The rows and removals still true now, with the posts share-locked until the caller
    commits (a post changed since it was read has a newer entry of its own)."""
    ids = sorted({r["id"] for r in rows} | set(gone))
    table = Post._meta.db_table  # a model's table: no user input in this SQL
    sql = f"SELECT id, content_hash, created_at, NOT is_hidden AND deleted_at IS NULL FROM {table} WHERE id = ANY(%s) ORDER BY id FOR SHARE"  # noqa: S608, E501
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids])
        now = {
            pk: (content_hash, created_at, visible)
            for pk, content_hash, created_at, visible in cursor.fetchall()
        }
    kept = [r for r in rows if now.get(r["id"]) == (r["content_hash"], r["created_at"], True)]
    still_gone = [pk for pk in gone if pk not in now or not now[pk][2]]
    return kept, still_gone


def index_flush(*, time_budget_s: float | None = None) -> FlushReport:
    """Apply the queued changes to the live generation, a batch at a time (see module doc)."""
    budget = settings.PLAZA_INDEX_FLUSH_BUDGET_S if time_budget_s is None else time_budget_s
    started = time.monotonic()
    report = FlushReport()
    if not IndexQueueEntry.objects.exists():
        return report
    generation = generation_live_ensure()
    report.generation = generation.name
    backend = search_backend()
    encoder = indexes.encoder_for(generation.embed_model)
    _wait_for_batch_window()
    while True:
        t0 = time.monotonic()
        with transaction.atomic() if backend.concurrent_writers else nullcontext():
            entries = _claim(backend)
            if not entries:
                break
            post_ids = sorted({post_id for _, post_id, _ in entries})
            rows = _visible_rows(post_ids)
            vectors = encoder.encode([r["text"] for r in rows]) if rows else None
            gone = sorted(set(post_ids) - {r["id"] for r in rows})
            if backend.concurrent_writers:
                kept, gone = _unchanged(rows, gone)
                keep = {r["id"] for r in kept}
                if vectors is not None:
                    vectors = vectors[[i for i, r in enumerate(rows) if r["id"] in keep]]
                rows = kept
            if rows:
                backend.upsert(generation, rows, vectors)
            backend.delete(generation, gone)
            backend.commit(generation)
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
        backend.after_writes(generation, last=False)
    if report.batches:
        logger.info("index flush: %s", asdict(report))
        backend.after_writes(generation, last=True)
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
