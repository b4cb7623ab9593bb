"""Live sync: every change to a post reaches the live index within seconds.

posts announces each change (`posts.signals.posts_changed`, sent inside its write
transaction) and search, listening since `SearchConfig.ready()`, calls
`index_request(post_ids=...)`: an `IndexQueueEntry` per post is written with the change,
and once the transaction commits an `index_flush` task goes to the `index` queue. The
flush takes everything queued (so posts that arrive while one batch is being embedded
share the next encode and commit), embeds the visible posts, removes the hidden, deleted
and vanished ones, commits the index, and only then deletes the entries it handled. A
worker killed mid-batch leaves the entries in place for the next flush.

Reconcile (search.services.reconcile) repairs what slipped past the queue; a rebuild
(search.services.generations) fills a new generation beside the live one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min
from django.utils import timezone

from posts.models import Post
from search import indexes
from search.models import IndexGeneration, IndexQueueEntry
from search.services.bm25 import bm25_refresh_request
from search.services.generations import generation_live_ensure, posts_embed

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
    return list(
        Post.objects.visible()
        .filter(pk__in=post_ids)
        .values("id", "text", "created_at", "content_hash")
    )


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
            posts_embed(index=index, encoder=encoder, rows=rows)
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
