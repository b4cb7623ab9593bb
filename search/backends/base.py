"""What a search backend does, whichever engine holds the index.

    backend = search_backend()                      # PLAZA_SEARCH_BACKEND: faiss | postgres
    dense = backend.dense(generation, vector, depth=100, filters=Filters(lang="es"))
    lexical = backend.lexical(generation, "vacunas covid", depth=100, filters=filters)
    dense.ids, dense.scores                          # best first; lexical.langs too

Everything above the backend (parsing the X operators, fusing the two rankings with
language-aware weights, recency, loading and re-checking the posts, the answer chain) is
the same on both. A backend answers filtered searches exactly: a filter never makes a
page come back short while matching posts exist.

Writes take post rows (`PostRow`: what the index keeps of a post) with their vectors;
generations are created beside the live one, finished (indexes built) and dropped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from search.models import IndexGeneration

POST_ROW_FIELDS = ("id", "text", "created_at", "content_hash", "author_id", "lang")


@dataclass
class Filters:
    """Which posts a search may return. None (or empty) means no filter of that kind.

    `allow_ids` are the only posts allowed (a phrase's matches), `deny_ids` never (an
    excluded word's). Authors, language and time are columns a backend filters on itself.
    """

    author_ids: list[int] | None = None
    lang: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    allow_ids: np.ndarray | None = None
    deny_ids: np.ndarray | None = None
    cache: dict = field(default_factory=dict, compare=False, repr=False)  # a backend's own

    @property
    def any(self) -> bool:
        return any(
            value is not None
            for value in (
                self.author_ids,
                self.lang,
                self.since,
                self.until,
                self.allow_ids,
                self.deny_ids,
            )
        )


@dataclass
class Ranked:
    """One method's ranking: ids best first, each with that method's own score (cosine
    for dense, BM25 for lexical); `langs` are the lexical hits' languages ("" unknown)."""

    ids: np.ndarray
    scores: np.ndarray
    langs: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> Ranked:
        return cls(np.empty(0, np.int64), np.empty(0, np.float32))


class SearchBackend(ABC):
    """See the module docstring. Methods take the generation they act on."""

    name: str
    concurrent_writers = False  # whether any number of processes may write at once

    # --- reads -------------------------------------------------------------------------------

    @abstractmethod
    def dense(
        self, generation: IndexGeneration, vector: np.ndarray, *, depth: int, filters: Filters
    ) -> Ranked:
        """The `depth` posts nearest `vector` (unit length, (d,)) among those `filters` allow."""

    @abstractmethod
    def lexical(
        self, generation: IndexGeneration, query: str, *, depth: int, filters: Filters
    ) -> Ranked:
        """The `depth` best BM25 matches of `query` (ml.bm25.tokenize's words) among those
        `filters` allow, with a positive score."""

    @abstractmethod
    def phrase_ids(self, generation: IndexGeneration, phrase: str) -> np.ndarray:
        """Ids of the indexed posts holding `phrase` word for word (folded), int64."""

    @abstractmethod
    def ids(self, generation: IndexGeneration) -> np.ndarray:
        """The ids of the posts the generation holds, int64, sorted."""

    def size(self, generation: IndexGeneration) -> int:
        """How many posts the generation holds."""
        return len(self.ids(generation))

    @abstractmethod
    def stats(self, generation: IndexGeneration) -> dict:
        """Figures for the ops page: vectors, lexical_docs, and the engine's own."""

    # --- writes ------------------------------------------------------------------------------

    @abstractmethod
    def upsert(self, generation: IndexGeneration, rows: list[dict], vectors: np.ndarray) -> None:
        """Write posts (dicts with POST_ROW_FIELDS) with their vectors ((n, d), unit)."""

    @abstractmethod
    def delete(self, generation: IndexGeneration, ids: list[int]) -> None:
        """Remove posts by id (unknown ids are ignored)."""

    def build_write(
        self, generation: IndexGeneration, number: int, rows: list[dict], vectors: np.ndarray
    ) -> None:
        """Write chunk `number` of a rebuild (any worker; again, if its worker died)."""
        self.upsert(generation, rows, vectors)

    def commit(self, generation: IndexGeneration) -> None:  # noqa: B027 - an optional hook
        """Make the writes since the last commit visible to readers (and durable)."""

    def after_writes(self, generation: IndexGeneration, *, last: bool) -> None:  # noqa: B027
        """Called after each flushed batch (`last`: the flush is done)."""

    # --- generations -------------------------------------------------------------------------

    @abstractmethod
    def generation_create(self, generation: IndexGeneration, *, bulk: bool = False) -> None:
        """Make the generation's empty index. `bulk`: it is about to be filled by a
        rebuild, and `generation_finish` completes it."""

    @abstractmethod
    def generation_finish(self, generation: IndexGeneration) -> None:
        """Complete a bulk-filled generation so it can go live (indexes, statistics)."""

    @abstractmethod
    def generation_drop(self, generation: IndexGeneration) -> None:
        """Remove everything the generation holds (it is retired or failed)."""

    @abstractmethod
    def generation_exists(self, generation: IndexGeneration) -> bool:
        """Whether the generation's index is still there (not dropped)."""

    @abstractmethod
    def diff(self, generation: IndexGeneration) -> tuple[list[int], list[int], list[int]]:
        """(missing, stale, removed) against the database's visible posts: visible and not
        indexed; indexed from another text or time; indexed and no longer visible."""

    def compact(self, generation: IndexGeneration) -> int:
        """Reclaim deleted entries; returns how many segments or tables it rewrote."""
        return 0
