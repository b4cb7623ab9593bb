"""Index tasks. The `index` queue has one writer: flushes, BM25 refreshes, reconcile and
compaction run there one at a time; a generation build runs on `default`, beside it."""

from celery import shared_task

from search import answers, services


@shared_task(ignore_result=True)
def index_flush() -> dict:
    """Apply the queued post changes to the live index."""
    report = services.index_flush()
    return {"upserted": report.upserted, "removed": report.removed, "lag_s": report.lag_s}


@shared_task(ignore_result=True)
def index_bm25_refresh(generation_id: int) -> bool:
    """Rebuild a generation's BM25 if posts changed since its last build."""
    return services.bm25_refresh(generation_id=generation_id)


@shared_task(ignore_result=True)
def reconcile() -> dict:
    """Diff the posts against the index, queue the repairs, and apply them."""
    report = services.index_reconcile()
    services.index_flush()
    services.generation_model_check()
    return report.summary()


@shared_task(ignore_result=True)
def index_compact() -> int:
    return services.index_compact()


@shared_task(ignore_result=True)
def generation_build(model: str | None = None) -> str:
    """Build a new generation (e.g. after the embedding model setting changed)."""
    return services.generation_build(model=model).name


@shared_task(ignore_result=True)
def answer_run(answer_id: str) -> str:
    """Write one answer (gpu queue: the model stays loaded in this worker process)."""
    return answers.answer_run(answer_id=answer_id).status


@shared_task(ignore_result=True)
def answers_fail_stale() -> int:
    """Mark failed the answers whose worker died mid-way (beat, every minute)."""
    return answers.answers_fail_stale()
