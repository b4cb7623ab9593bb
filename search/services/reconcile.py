"""Reconcile: the database is the source of truth, and the index is repaired both ways.

`index_reconcile` diffs the database's visible posts against the live index (the search
backend's `diff`: the index's entries against the posts with `faiss`, SQL anti-joins both
ways with `postgres`) and queues every difference for the next flush: missing, stale,
removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from posts.models import Post
from search.backends import search_backend
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
    backend = search_backend()
    report = ReconcileReport(
        generation=generation.name,
        posts=Post.objects.visible().count(),
        vectors=backend.size(generation),
    )
    report.missing, report.stale, report.removed = backend.diff(generation)
    with transaction.atomic():
        report.queued = index_request(post_ids=[*report.missing, *report.stale, *report.removed])
    IndexGeneration.objects.filter(pk=generation.pk).update(
        reconciled_at=timezone.now(), reconcile_report=report.summary()
    )
    if report.queued:
        logger.warning("reconcile queued repairs: %s", report.summary())
    return report
