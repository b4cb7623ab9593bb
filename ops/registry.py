"""What the apps above ops report to it: the index's figures and their jobs.

ops sits below search and ads and imports neither of them. They register their readers
here in their AppConfig.ready(), as accounts.landing takes landing pages, and the ops
page, /metrics and /healthz ask the registry:

    index_register("search.selectors.index_figures_for_ops")     # () -> IndexFigures
    jobs_register(kind="answers", label="Answers", report="search.selectors.answer_jobs_report")

    index_figures()                                   # IndexFigures, or None: no index app
    for source in jobs_sources():                     # JobsSource(kind, label, reader)
        jobs_report(source, failed_since=an_hour_ago, limit=10)   # JobsReport

A reader is a callable or its dotted path (imported at the first call, so registering
costs an app nothing at start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class IndexFigures:
    """The live search index as ops shows it."""

    generation: str | None  # the live generation's name; None before the first build
    embed_model: str = ""  # the model its vectors come from
    vectors: int = 0  # live vectors (deleted and replaced ones left out)
    active_vectors: int = 0  # vectors in the active (not yet sealed) segment
    sealed_segments: int = 0  # sealed, trained segments
    tombstones: int = 0  # deleted or replaced vectors in sealed segments, until compaction
    bm25_documents: int = 0  # documents in the newest BM25 build
    queued: int = 0  # changed posts waiting for the index
    freshness_lag_s: float = 0.0  # age of the oldest waiting change; 0 when none waits
    last_flush_at: datetime | None = None  # when the last batch reached the index
    last_flush_lag_s: float | None = None  # that batch's oldest change to its commit
    last_flush_posts: int = 0  # posts in that batch


@dataclass(frozen=True)
class JobRow:
    """One job as the ops page lists it."""

    id: str
    status: str
    title: str  # what the job is about: a question, a campaign, an adapter
    created_at: datetime
    updated_at: datetime  # the job's last write (a running job writes as it goes)
    error: str = ""
    progress: float | None = None  # 0..1 where the job knows its progress
    admin_url: str = ""


@dataclass(frozen=True)
class JobsReport:
    """One kind of job: how many rows are in each status, the open ones, the failed ones."""

    counts: dict[str, int]  # rows by status, every status of the kind listed
    running: list[JobRow] = field(default_factory=list)  # queued or running, oldest first
    failed: list[JobRow] = field(default_factory=list)  # failed since a moment, newest first


IndexReader = Callable[[], IndexFigures]
JobsReader = Callable[..., JobsReport]  # (*, failed_since: datetime, limit: int)


@dataclass(frozen=True)
class JobsSource:
    kind: str  # a short name for metrics labels: answers, drafts, training
    label: str  # the heading on the ops page
    reader: JobsReader | str


_index_reader: list[IndexReader | str] = []
_jobs_sources: dict[str, JobsSource] = {}


def _resolve(reader):
    return import_string(reader) if isinstance(reader, str) else reader


def index_register(reader: IndexReader | str) -> None:
    """Names the one reader of the index's figures; a later registration replaces it."""
    _index_reader[:] = [reader]


def index_figures() -> IndexFigures | None:
    """The index's figures now, or None when no app registered an index."""
    if not _index_reader:
        return None
    return _resolve(_index_reader[0])()


def jobs_register(*, kind: str, label: str, report: JobsReader | str) -> None:
    """Adds (or replaces) the reader of one kind of job, called as
    report(failed_since=datetime, limit=int) -> JobsReport."""
    _jobs_sources[kind] = JobsSource(kind=kind, label=label, reader=report)


def jobs_sources() -> list[JobsSource]:
    """The registered kinds of job, in registration order."""
    return list(_jobs_sources.values())


def jobs_report(source: JobsSource, *, failed_since: datetime, limit: int) -> JobsReport:
    return _resolve(source.reader)(failed_since=failed_since, limit=limit)
