"""Index tasks, on the `index` queue: flushes, BM25 refreshes (faiss), reconcile,
compaction, and a rebuild's chunks and finish. With `faiss` one worker takes that queue
(the index's one writer); with `postgres`, any number. A rebuild is started on `default`
and fans its chunks out on the `build` queue, which index and gpu workers both take
(search.services.generations); its finish runs on `index`."""

from celery import shared_task

from search.services import bm25, generations, index_sync
from search.services.reconcile import index_reconcile


@shared_task(name="search.tasks.index_flush", queue_name="index", ignore_result=True)
def index_flush() -> dict:
    """Apply the queued post changes to the live index."""
    report = index_sync.index_flush()
    return {"upserted": report.upserted, "removed": report.removed, "lag_s": report.lag_s}


@shared_task(name="search.tasks.index_bm25_refresh", queue_name="index", ignore_result=True)
def index_bm25_refresh(generation_id: int) -> bool:
    """Rebuild a generation's BM25 if posts changed since its last build."""
    return bm25.bm25_refresh(generation_id=generation_id)


@shared_task(name="search.tasks.reconcile", queue_name="index", ignore_result=True)
def reconcile() -> dict:
    """Diff the posts against the index, queue the repairs, and apply them."""
    report = index_reconcile()
    index_sync.index_flush()
    generations.generation_model_check()
    return report.summary()


@shared_task(name="search.tasks.index_compact", queue_name="index", ignore_result=True)
def index_compact() -> int:
    return generations.index_compact()


@shared_task(name="search.tasks.generation_build", queue_name="default", ignore_result=True)
def generation_build(model: str | None = None) -> str:
    """Start a new generation (e.g. after the embedding model setting changed) and send
    its chunks to the index workers."""
    return generations.generation_build_fan_out(model=model).name


@shared_task(name="search.tasks.generation_build_chunk", queue_name="build", ignore_result=True)
def generation_build_chunk(chunk_id: int) -> bool:
    """Encode and write one chunk of a rebuild; the last one sends the finish."""
    last = generations.generation_build_chunk(chunk_id=chunk_id)
    if last:
        generation_build_finish.apply_async(
            (generations.IndexBuildChunk.objects.get(pk=chunk_id).generation_id,)
        )
    return last


@shared_task(name="search.tasks.generation_build_finish", queue_name="index", ignore_result=True)
def generation_build_finish(generation_id: int) -> str | None:
    """Build a rebuilt generation's indexes and swap it in."""
    generation = generations.generation_build_finish(generation_id=generation_id)
    return generation.name if generation is not None else None


@shared_task(name="search.tasks.generation_builds_resume", queue_name="index", ignore_result=True)
def generation_builds_resume() -> int:
    """Re-send the chunks of a rebuild that has stalled (beat)."""
    return generations.generation_builds_resume()
