"""Reconcile: the database is the source of truth, and the index is repaired both ways.

`index_reconcile` diffs the database's visible posts (id and tag, a hash of what was
embedded) against the live index's entries and queues every difference for the next
flush: missing, stale, removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.utils import timezone

from posts.models import Post
from search import indexes
from search.models import IndexGeneration
from search.services.generations import generation_live_ensure
from search.services.index_sync import index_request

logger = logging.getLogger(__name__)


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
