"""Index tasks. The `index` queue has one writer: flushes, BM25 refreshes, reconcile and
compaction run there one at a time; a generation build runs on `default`, beside it."""

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
    """Build a new generation (e.g. after the embedding model setting changed)."""
    return generations.generation_build(model=model).name
