"""BM25 for the live generation: built from the database (the source of truth), rebuilt
when posts changed and the last build is older than PLAZA_BM25_REFRESH_S.

    bm25_refresh_request(generation=live)   # after a flush: now, or a task for later
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from ml.bm25 import BM25Index
from ml.language import detect_language
from posts.models import Post
from search import indexes
from search.models import IndexGeneration

logger = logging.getLogger(__name__)


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
    from search.tasks.index import index_bm25_refresh as index_bm25_refresh_task

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
