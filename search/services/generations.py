"""Generations: complete indexes of the posts, one per embedding model and rebuild.

Exactly one generation is live. A rebuild (`generation_build`) fills a new one beside it
with the configured embedding model, then swaps it in and re-queues whatever changed
during the build; search keeps reading the old one until the swap. Retired generations
stay on disk for RETIRED_KEEP (readers may still have them open), then are pruned.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from ml.embeddings import Encoder
from ml.index import SegmentedIndex
from posts.models import Post
from search import indexes
from search.models import IndexGeneration, IndexQueueEntry
from search.services.bm25 import bm25_build

logger = logging.getLogger(__name__)

# Retired generations stay on disk this long (readers may still have them open).
RETIRED_KEEP = timedelta(hours=1)
BUILD_QUEUE_MARGIN = timedelta(minutes=5)


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


def posts_embed(*, index: SegmentedIndex, encoder: Encoder, rows: list[dict]) -> None:
    """Embed post rows (id, text, created_at, content_hash) into a generation's index."""
    ids = np.fromiter((r["id"] for r in rows), np.int64, len(rows))
    ts = np.fromiter((int(r["created_at"].timestamp()) for r in rows), np.int64, len(rows))
    tags = np.fromiter(
        (indexes.tag_of(r["content_hash"], int(r["created_at"].timestamp())) for r in rows),
        np.int64,
        len(rows),
    )
    vectors = encoder.encode([r["text"] for r in rows])  # (n, d)
    index.upsert(ids, vectors, ts, tags)


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
    # Imported here: reconcile asks this module for the live generation.
    from search.services.reconcile import index_reconcile

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
    posts_embed(index=index, encoder=encoder, rows=chunk)
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
    from search.tasks.index import generation_build as generation_build_task

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
