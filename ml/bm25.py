"""BM25 over posts, on bm25s, with exact filters and the term lookups query operators need.

    bm25 = BM25Index.build(ids, texts, timestamps, langs)    # int64 (n,), [str], int64 (n,), [str]
    scores, ids = bm25.search("vacunas covid", k=10, allow_ids=None, since=None, until=None)
    bm25.save(folder); bm25 = BM25Index.load(folder)         # memory-mapped scores
    bm25.ids_with_phrase("tercera dosis", texts_of)          # exact phrase, verified on texts

Tokens: Unicode words, lower-cased, accents folded (so "Médico" matches "medico"), common
English and Spanish function words dropped. The same `tokenize` serves documents,
queries, phrases and the words to highlight, so they always agree.

bm25s stores each (token, document) score precomputed in a sparse matrix; a query sums the
columns of its tokens over every document (`get_scores`), so a filter is a mask over that
vector and the top k among the matching documents is exact, however selective the filter.
A build is immutable: the index worker rebuilds it from the database every few seconds
while posts change (2-4 s for 48,000 posts on 2 cores) and readers reload the new folder.
Posts written since the build are *fresh* documents (`FreshDocs`): search scores them
with the build's own statistics (document count, document frequencies, average length:
Lucene's BM25, as bm25s computes it), so they rank on the same scale as the rest at once,
and their stale copies in the build are masked out.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_SPANISH

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)
_COMBINING = re.compile(r"[\u0300-\u036f]")
STOPWORDS = frozenset(
    _COMBINING.sub("", unicodedata.normalize("NFKD", w.lower()))
    for w in (*STOPWORDS_EN, *STOPWORDS_SPANISH)
)
_META = "meta.json"


class FreshDocs:
    """Documents newer than a build: ids, their tokens, timestamps; `replaced` are ids whose
    copies in the build are out of date (every fresh id, plus posts removed since)."""

    def __init__(self, ids, tokens: Sequence[list[str]], timestamps, replaced=()):
        self.ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        self.tokens = list(tokens)
        self.ts = np.asarray(timestamps, dtype=np.int64).reshape(-1)
        self.replaced = np.union1d(self.ids, np.asarray(list(replaced), dtype=np.int64))
        if not (len(self.ids) == len(self.tokens) == len(self.ts)):
            raise ValueError("FreshDocs: ids, tokens and timestamps must have the same length")

    def __len__(self) -> int:
        return len(self.ids)


def fold(text: str) -> str:
    """Lower case without accents: the form tokens and phrases are compared in."""
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.lower()))


def words(text: str) -> list[str]:
    """Every folded word of `text`, stopwords included (for phrase matching)."""
    return _WORD.findall(fold(text))


def tokenize(text: str) -> list[str]:
    """The folded words of `text` that BM25 indexes (no stopwords, no lone characters)."""
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def contains_phrase(text_words: Sequence[str], phrase_words: Sequence[str]) -> bool:
    """Whether `phrase_words` occur in `text_words` contiguously, in order."""
    n = len(phrase_words)
    if n == 0:
        return True
    first = phrase_words[0]
    return any(
        text_words[i] == first and list(text_words[i : i + n]) == list(phrase_words)
        for i in range(len(text_words) - n + 1)
    )


class BM25Index:
    """See the module docstring."""

    def __init__(
        self,
        retriever: bm25s.BM25 | None,
        ids: np.ndarray,
        ts: np.ndarray,
        langs: np.ndarray,
        doc_len: np.ndarray | None = None,
        k1: float = 1.2,
        b: float = 0.75,
        tags: np.ndarray | None = None,
    ):
        self.retriever = retriever  # None when there are no documents
        self.ids = ids  # (n,) post id at each document position
        self.ts = ts  # (n,) unix seconds
        self.langs = langs  # (n,) language code per document, "" when unknown
        self._order = np.argsort(ids, kind="stable")
        self._vocab: dict[str, int] = retriever.vocab_dict if retriever is not None else {}
        self.doc_len = doc_len if doc_len is not None else np.ones(len(ids), np.int32)  # (n,)
        self.k1, self.b = k1, b
        self.tags = tags if tags is not None else np.zeros(len(ids), np.int64)  # (n,) caller's

    def __len__(self) -> int:
        return len(self.ids)

    # -- building and persistence -----------------------------------------------------------

    @classmethod
    def build(
        cls,
        ids: Any,
        texts: Sequence[str],
        timestamps: Any = None,
        langs: Sequence[str] | None = None,
        *,
        tags: Any = None,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> BM25Index:
        """Index `texts`; `ids[i]` names `texts[i]`. Timestamps default to 0, langs to "";
        `tags` (int64, default 0) are the caller's version of each text (see `tags_of`)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(texts):
            raise ValueError(
                f"ids and texts must have the same length; got {len(ids)}, {len(texts)}"
            )
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids: each document needs its own id")
        ts = (
            np.zeros(len(ids), np.int64)
            if timestamps is None
            else np.asarray(timestamps, dtype=np.int64).reshape(-1)
        )
        langs_arr = np.asarray(list(langs) if langs is not None else [""] * len(ids), dtype=str)
        if not (len(ts) == len(langs_arr) == len(ids)):
            raise ValueError("ids, timestamps and langs must have the same length")
        retriever = None
        doc_len = np.zeros(len(ids), np.int32)
        if len(ids):
            # An empty document still needs a token so positions stay aligned with ids.
            corpus = [tokenize(text) or ["\x00"] for text in texts]
            doc_len = np.fromiter((len(doc) for doc in corpus), np.int32, len(corpus))
            retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
            retriever.index(corpus, show_progress=False)
        tags_arr = (
            np.zeros(len(ids), np.int64)
            if tags is None
            else np.asarray(tags, dtype=np.int64).reshape(-1)
        )
        if len(tags_arr) != len(ids):
            raise ValueError("ids and tags must have the same length")
        return cls(retriever, ids, ts, langs_arr, doc_len, k1, b, tags_arr)

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.retriever is not None:
            self.retriever.save(str(folder / "bm25s"))
        np.savez(
            folder / "docs.npz",
            ids=self.ids,
            ts=self.ts,
            langs=self.langs,
            doc_len=self.doc_len,
            tags=self.tags,
        )
        meta = {"docs": len(self.ids), "k1": self.k1, "b": self.b}
        (folder / _META).write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> BM25Index:
        folder = Path(folder)
        meta = json.loads((folder / _META).read_text())
        with np.load(folder / "docs.npz") as docs:
            ids, ts, langs = docs["ids"], docs["ts"], docs["langs"]
            doc_len = docs["doc_len"] if "doc_len" in docs.files else None
            tags = docs["tags"] if "tags" in docs.files else None
        retriever = bm25s.BM25.load(str(folder / "bm25s"), mmap=True) if meta["docs"] else None
        k1, b = meta.get("k1", 1.2), meta.get("b", 0.75)
        return cls(retriever, ids, ts, langs, doc_len, k1, b, tags)

    # -- reading ------------------------------------------------------------------------------

    def positions_of(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Document positions of the given post ids (unknown ids are skipped)."""
        ids = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64)
        if not len(self.ids) or not len(ids):
            return np.empty(0, np.int64)
        sorted_ids = self.ids[self._order]
        where = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return self._order[where[sorted_ids[where] == ids]]

    def tags_of(self, ids: Iterable[int] | np.ndarray) -> dict[int, int]:
        """{id: tag} for the given ids that are in this build."""
        positions = self.positions_of(ids)
        return dict(zip(self.ids[positions].tolist(), self.tags[positions].tolist(), strict=True))

    def docs_with(self, token: str) -> np.ndarray:
        """Positions of the documents that contain `token` (an output of `tokenize`)."""
        column = self._vocab.get(token)
        if column is None or self.retriever is None:
            return np.empty(0, np.int64)
        scores = self.retriever.scores
        return np.asarray(
            scores["indices"][scores["indptr"][column] : scores["indptr"][column + 1]],
            dtype=np.int64,
        )

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for `query`: float32 (n,)."""
        tokens = [t for t in tokenize(query) if t in self._vocab]
        if not tokens or self.retriever is None:
            return np.zeros(len(self.ids), np.float32)
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)

    def fresh_scores(self, query: str, fresh: FreshDocs) -> np.ndarray:
        """BM25 scores of documents outside the build, on the build's scale: float32 (m,).

        Lucene's BM25 with the build's document count, document frequencies and average
        length: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1 (1 - b +
        b dl / avgdl)). A word the build never saw counts as df = 0.
        """
        tokens = set(tokenize(query))
        out = np.zeros(len(fresh), np.float32)
        if not tokens or not len(fresh):
            return out
        n_docs = max(1, len(self.ids))
        avgdl = float(self.doc_len.mean()) if len(self.doc_len) else 1.0
        indptr = self.retriever.scores["indptr"] if self.retriever is not None else None
        idf = {}
        for token in tokens:
            column = self._vocab.get(token)
            df = int(indptr[column + 1] - indptr[column]) if column is not None else 0
            idf[token] = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
        for row, doc in enumerate(fresh.tokens):
            norm = self.k1 * (1 - self.b + self.b * max(1, len(doc)) / avgdl)
            for token in tokens.intersection(doc):
                tf = doc.count(token)
                out[row] += idf[token] * tf / (tf + norm)
        return out

    def mask(
        self,
        *,
        allow_ids: Iterable[int] | np.ndarray | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> np.ndarray | None:
        """Documents that pass the filters (bool (n,)), or None when there are none."""
        if allow_ids is None and since is None and until is None:
            return None
        mask = np.ones(len(self.ids), dtype=bool)
        if allow_ids is not None:
            mask[:] = False
            mask[self.positions_of(allow_ids)] = True
        if since is not None:
            mask &= self.ts >= since
        if until is not None:
            mask &= self.ts < until
        return mask

    def search(
        self,
        query: str,
        k: int,
        *,
        allow_ids: Iterable[int] | np.ndarray | None = None,
        since: int | None = None,
        until: int | None = None,
        fresh: FreshDocs | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top k matching documents with a positive score: float32 (<=k,), int64 (<=k,).

        `fresh` documents (posts written since the build) are searched too, and their
        stale copies in the build left out.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k: expected a positive int, got {k!r}")
        scores = self.scores(query)
        mask = self.mask(allow_ids=allow_ids, since=since, until=until)
        if fresh is not None and len(fresh.replaced):
            mask = np.ones(len(self.ids), dtype=bool) if mask is None else mask.copy()
            mask[self.positions_of(fresh.replaced)] = False
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        found_scores, found_ids = self._top(scores, self.ids, k)
        if fresh is None or not len(fresh):
            return found_scores, found_ids
        extra = self.fresh_scores(query, fresh)
        keep = np.ones(len(fresh), dtype=bool)
        if allow_ids is not None:
            allowed = allow_ids if isinstance(allow_ids, np.ndarray) else list(allow_ids)
            keep &= np.isin(fresh.ids, np.asarray(allowed, dtype=np.int64))
        if since is not None:
            keep &= fresh.ts >= since
        if until is not None:
            keep &= fresh.ts < until
        extra = np.where(keep, extra, 0.0).astype(np.float32)
        return self._top(
            np.concatenate([found_scores, extra]), np.concatenate([found_ids, fresh.ids]), k
        )

    @staticmethod
    def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best positive scores, ties at the cut to the lowest ids, sorted (score, id)."""
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:  # the k best; ties at the cut go to the lowest ids (stable pages)
            cut = scores[hits[np.argpartition(-scores[hits], k - 1)[:k]]].min()
            above, tied = hits[scores[hits] > cut], hits[scores[hits] == cut]
            tied = tied[np.argsort(ids[tied], kind="stable")][: k - len(above)]
            hits = np.concatenate([above, tied])
        hits = hits[np.lexsort((ids[hits], -scores[hits]))]  # score, then id: stable pages
        return scores[hits].astype(np.float32), ids[hits]

    def ids_with_phrase(
        self,
        phrase: str,
        texts_of: Callable[[np.ndarray], dict[int, str]],
        fresh: FreshDocs | None = None,
    ) -> np.ndarray:
        """Ids of the documents containing `phrase` word for word (case and accents folded).

        Candidates come from the index (documents holding every indexed word of the
        phrase); `texts_of(ids) -> {id: text}` supplies their texts to verify the order.
        A phrase of only stopwords has no candidates from the index: every document is one.
        """
        phrase_words = words(phrase)
        if not phrase_words:
            return np.empty(0, np.int64)
        candidates = None
        for token in set(tokenize(phrase)):
            found = self.docs_with(token)
            candidates = found if candidates is None else np.intersect1d(candidates, found)
        ids = self.ids if candidates is None else self.ids[candidates]
        if fresh is not None and len(fresh):
            ids = np.union1d(ids, fresh.ids)
        texts = texts_of(ids)
        return np.asarray(
            [
                pid
                for pid in ids.tolist()
                if contains_phrase(words(texts.get(pid, "")), phrase_words)
            ],
            dtype=np.int64,
        )
