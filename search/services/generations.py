"""Generations: complete indexes of the posts, one per embedding model and rebuild.

Exactly one generation is live. A rebuild fills a new one beside it with the configured
embedding model, then swaps it in and re-queues whatever changed during the build;
search keeps reading the old one until the swap. Retired generations stay for
RETIRED_KEEP (readers may still have them open), then are pruned.

A rebuild is split into chunks of PLAZA_INDEX_BUILD_CHUNK posts (by id):

    generation = generation_build_start(model=...)   # the empty generation and its chunks
    generation_build_chunk(chunk_id=...)              # any worker, any order, again if killed
    generation_build_finish(generation_id=...)        # indexes, then the swap

`generation_build_fan_out` sends one task per chunk (a Celery group) to the `build`
queue, so every index and gpu worker that is up takes chunks; the chunk that completes the set
sends the finish (the group's join is counted in the database, so it survives any
worker's death and needs no result backend). A chunk's worker writes directly with
`postgres`; with `faiss` it leaves its vectors beside the generation for the one writer,
which adds them at the finish. Progress is on the generation row. `generation_build`
runs the same steps in this process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.text import slugify

from posts.models import Post
from search import indexes
from search.backends import POST_ROW_FIELDS, search_backend
from search.models import IndexBuildChunk, IndexGeneration, IndexQueueEntry

logger = logging.getLogger(__name__)

# Retired generations stay this long (readers may still have them open).
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
    backend = search_backend()
    generation = IndexGeneration(
        name=_generation_name(model),
        backend=backend.name,
        embed_model=model,
        dim=indexes.encoder_for(model).dim,
        state=IndexGeneration.State.LIVE,
        activated_at=timezone.now(),
    )
    try:
        # The empty index exists before the row says live (both commit together), so a
        # reader that sees the row always finds an index to open.
        with transaction.atomic():
            generation.save()
            backend.generation_create(generation)
    except IntegrityError:  # another process made one first
        backend.generation_drop(generation)
    return indexes.live_generation(fresh=True)


# --- rebuilds --------------------------------------------------------------------------------


def generation_build_start(*, model: str | None = None) -> IndexGeneration:
    """A new generation (building) with its empty index and its chunks."""
    model = model or settings.PLAZA_EMBED_MODEL
    encoder = indexes.encoder_for(model)
    backend = search_backend()
    size = settings.PLAZA_INDEX_BUILD_CHUNK
    ids = list(Post.objects.visible().order_by("id").values_list("id", flat=True))
    slices = [ids[i : i + size] for i in range(0, len(ids), size)]
    with transaction.atomic():
        generation = IndexGeneration.objects.create(
            name=_generation_name(model),
            backend=backend.name,
            embed_model=model,
            dim=encoder.dim,
            posts_total=len(ids),
            chunks_total=len(slices),
        )
        IndexBuildChunk.objects.bulk_create(
            IndexBuildChunk(generation=generation, number=n, first_id=s[0], last_id=s[-1])
            for n, s in enumerate(slices)
        )
    try:
        backend.generation_create(generation, bulk=True)
    except BaseException as exc:
        generation_build_fail(generation=generation, error=exc)
        raise
    return generation


def generation_build_chunk(*, chunk_id: int) -> bool:
    """Encode and write one chunk; returns whether it completed the set (the caller then
    sends, or runs, the finish). A chunk done already is skipped."""
    chunk = IndexBuildChunk.objects.select_related("generation").filter(pk=chunk_id).first()
    if chunk is None or chunk.done_at is not None:
        return False
    generation = chunk.generation
    if generation.state != IndexGeneration.State.BUILDING:
        return False
    IndexBuildChunk.objects.filter(pk=chunk.pk).update(attempts=F("attempts") + 1)
    rows = list(
        Post.objects.visible()
        .filter(id__gte=chunk.first_id, id__lte=chunk.last_id)
        .order_by("id")
        .values(*POST_ROW_FIELDS)
    )
    backend = search_backend(generation)
    if rows:
        vectors = indexes.encoder_for(generation.embed_model).encode([r["text"] for r in rows])
        backend.build_write(generation, chunk.number, rows, vectors)
    with transaction.atomic():
        locked = IndexGeneration.objects.select_for_update().get(pk=generation.pk)
        marked = IndexBuildChunk.objects.filter(pk=chunk.pk, done_at__isnull=True).update(
            done_at=timezone.now(), posts=len(rows)
        )
        if not marked:  # a redelivered copy finished first
            return False
        IndexGeneration.objects.filter(pk=generation.pk).update(
            chunks_done=F("chunks_done") + 1, posts_done=F("posts_done") + len(rows)
        )
        return locked.chunks_done + 1 == locked.chunks_total


def generation_build_finish(*, generation_id: int) -> IndexGeneration | None:
    """Build the generation's indexes, swap it in, re-queue what changed meanwhile."""
    # Imported here: reconcile asks this module for the live generation.
    from search.services.reconcile import index_reconcile

    generation = IndexGeneration.objects.filter(pk=generation_id).first()
    if generation is None or generation.state != IndexGeneration.State.BUILDING:
        return None
    if generation.chunks_done < generation.chunks_total:
        return None
    try:
        search_backend(generation).generation_finish(generation)
    except BaseException as exc:
        generation_build_fail(generation=generation, error=exc)
        raise
    with transaction.atomic():
        # A second finish (resent while this one built the indexes) swaps nothing.
        locked = IndexGeneration.objects.select_for_update().get(pk=generation.pk)
        if locked.state != IndexGeneration.State.BUILDING:
            return None
        IndexGeneration.objects.filter(
            backend=generation.backend, state=IndexGeneration.State.LIVE
        ).update(state=IndexGeneration.State.RETIRED)
        IndexGeneration.objects.filter(pk=generation.pk).update(
            state=IndexGeneration.State.LIVE,
            activated_at=timezone.now(),
            bm25_built_at=timezone.now(),
        )
        # Changes queued before the build began are in it already (with a margin for a
        # transaction that was open while the build read the table).
        IndexQueueEntry.objects.filter(
            enqueued_at__lt=generation.created_at - BUILD_QUEUE_MARGIN
        ).delete()
    indexes.forget_live()
    # Whatever changed while the build ran (and slipped past the queue) is queued now.
    index_reconcile()
    generations_prune()
    generation.refresh_from_db()
    logger.info(
        "generation %s is live: %d posts, model %s",
        generation.name,
        generation.posts_done,
        generation.embed_model,
    )
    return generation


def generation_build_fail(*, generation: IndexGeneration, error: BaseException) -> None:
    IndexGeneration.objects.filter(pk=generation.pk).update(
        state=IndexGeneration.State.FAILED, error=f"{type(error).__name__}: {error}"
    )
    search_backend(generation).generation_drop(generation)


def generation_build(
    *,
    model: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IndexGeneration:
    """Build a complete new generation in this process, chunk by chunk, and swap it in.

    `progress(done, total)` is called as chunks finish.
    """
    generation = generation_build_start(model=model)
    try:
        for chunk_id in generation.chunks.order_by("number").values_list("id", flat=True):
            generation_build_chunk(chunk_id=chunk_id)
            if progress is not None:
                generation.refresh_from_db(fields=["posts_done"])
                progress(generation.posts_done, generation.posts_total)
    except BaseException as exc:
        generation_build_fail(generation=generation, error=exc)
        raise
    finished = generation_build_finish(generation_id=generation.pk)
    if finished is None:  # another process finished or failed it meanwhile
        generation.refresh_from_db()
        raise RuntimeError(f"generation {generation.name} was {generation.state} elsewhere")
    return finished


def generation_build_fan_out(*, model: str | None = None) -> IndexGeneration:
    """Start a rebuild and send its chunks to the index workers (see the module doc)."""
    from celery import group

    from search.tasks.index import generation_build_chunk as chunk_task
    from search.tasks.index import generation_build_finish as finish_task

    generation = generation_build_start(model=model)
    chunk_ids = list(generation.chunks.order_by("number").values_list("id", flat=True))
    if not chunk_ids:  # nothing to encode: finish now
        finish_task.apply_async((generation.pk,))
        return generation
    group(chunk_task.s(chunk_id) for chunk_id in chunk_ids).apply_async()
    return generation


def generation_builds_resume(*, silent_for: timedelta = timedelta(minutes=15)) -> int:
    """Re-send the chunks of a rebuild that has made no progress for `silent_for` (their
    messages were lost with a broker or a worker), or its finish once every chunk is
    done; returns how many tasks were sent."""
    from search.tasks.index import generation_build_chunk as chunk_task
    from search.tasks.index import generation_build_finish as finish_task

    cutoff = timezone.now() - silent_for
    sent = 0
    building = IndexGeneration.objects.served().filter(state=IndexGeneration.State.BUILDING)
    for generation in building.annotate(last_done=Max("chunks__done_at")):
        if max(generation.created_at, generation.last_done or generation.created_at) > cutoff:
            continue
        if generation.chunks_done >= generation.chunks_total:
            finish_task.apply_async((generation.pk,))
            sent += 1
            continue
        for chunk_id in generation.chunks.filter(done_at__isnull=True).values_list("id", flat=True):
            chunk_task.apply_async((chunk_id,))
            sent += 1
    return sent


def generations_prune() -> list[str]:
    """Drop the indexes of generations retired over RETIRED_KEEP ago and of failed ones."""
    removed = []
    cutoff = timezone.now() - RETIRED_KEEP
    for generation in IndexGeneration.objects.filter(
        state__in=[IndexGeneration.State.RETIRED, IndexGeneration.State.FAILED]
    ):
        backend = search_backend(generation)
        if backend.generation_exists(generation) and (
            generation.state == IndexGeneration.State.FAILED or generation.created_at < cutoff
        ):
            backend.generation_drop(generation)
            removed.append(generation.name)
    return removed


@transaction.atomic
def generation_delete(*, generations: Iterable[IndexGeneration]) -> int:
    """Delete retired or failed generations: their rows and their indexes. The live one and
    one being built are never deleted; returns how many were."""
    doomed = [g for g in generations if g.state not in {"live", "building"}]
    for generation in doomed:
        backend = search_backend(generation)
        transaction.on_commit(lambda g=generation, b=backend: b.generation_drop(g))
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
    if IndexGeneration.objects.served().filter(state=IndexGeneration.State.BUILDING).exists():
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
    return search_backend().compact(generation)
