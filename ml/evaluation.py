"""Retrieval evaluation on BEIR-format test collections.

    collection = load_beir("../shared/data/retrieval/xquad-en")
    runs = {"q1": ["d3", "d7", ...], ...}                 # ranked document ids per query
    scores = evaluate_run(runs, collection.qrels)          # {"ndcg@10": ..., "recall@10": ...,
                                                           #  "recall@100": ..., "mrr@10": ...}

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`,
`text`) and `qrels/test.tsv` (`query-id`, `corpus-id`, `score`, with a header). Only the
queries that have judgements are evaluated, as BEIR does. nDCG uses the graded scores
(2^rel - 1 gains, log2 discounts, the ideal ranking of the judged documents); recall is
the share of relevant documents (score > 0) found in the top k; MRR is 1 / rank of the
first relevant document in the top k. Each metric is averaged over the queries.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ml.bm25 import BM25Index
from ml.hybrid import FusionConfig, fuse, hybrid_fuse
from ml.index import IndexConfig, SegmentedIndex
from ml.language import detect_language, detect_languages

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


@dataclass
class BeirCollection:
    corpus: dict[str, str]  # doc id -> "title text"
    queries: dict[str, str]  # query id -> text (judged queries only)
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}


class BeirFormatError(ValueError):
    """A BEIR file is missing or malformed; the message names the file and line."""


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise BeirFormatError(
            f"{path}: missing (a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/test.tsv)"
        )
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BeirFormatError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise BeirFormatError(f"{path}:{number}: expected an object with an _id")
            rows.append(row)
    return rows


def load_beir(folder: str | Path, split: str = "test") -> BeirCollection:
    folder = Path(folder)
    corpus = {
        str(row["_id"]): " ".join(
            part for part in (str(row.get("title") or ""), str(row.get("text") or "")) if part
        )
        for row in _jsonl(folder / "corpus.jsonl")
    }
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise BeirFormatError(f"{qrels_path}: missing")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if number == 1 and row and not row[-1].strip().lstrip("-").isdigit():
                continue  # the header
            if len(row) < 3:
                raise BeirFormatError(f"{qrels_path}:{number}: expected query-id, corpus-id, score")
            try:
                grade = int(row[2])
            except ValueError:
                raise BeirFormatError(
                    f"{qrels_path}:{number}: score {row[2]!r} is not an integer"
                ) from None
            qrels.setdefault(row[0], {})[row[1]] = grade
    queries = {
        str(row["_id"]): str(row.get("text") or "")
        for row in _jsonl(folder / "queries.jsonl")
        if str(row["_id"]) in qrels
    }
    qrels = {query_id: qrels[query_id] for query_id in queries}  # judged and asked
    return BeirCollection(corpus=corpus, queries=queries, qrels=qrels)


def query_scores(ranked: Sequence[str], judged: Mapping[str, int]) -> dict[str, float]:
    """The four metrics for one query's ranking (a repeated document counts once)."""
    ranked = list(dict.fromkeys(ranked))
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    dcg = sum(
        (2 ** judged.get(doc, 0) - 1) / math.log2(rank + 1)
        for rank, doc in enumerate(ranked[:10], start=1)
    )
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
    idcg = sum((2**g - 1) / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    first = next((rank for rank, doc in enumerate(ranked[:10], start=1) if doc in relevant), None)
    n_relevant = len(relevant) or 1
    return {
        "ndcg@10": dcg / idcg if idcg else 0.0,
        "recall@10": len(relevant.intersection(ranked[:10])) / n_relevant,
        "recall@100": len(relevant.intersection(ranked[:100])) / n_relevant,
        "mrr@10": 1.0 / first if first else 0.0,
    }


def evaluate_run(
    runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """Mean of each metric over the judged queries (a query missing from runs scores 0)."""
    totals = dict.fromkeys(METRICS, 0.0)
    for query_id, judged in qrels.items():
        for name, value in query_scores(list(runs.get(query_id, [])), judged).items():
            totals[name] += value
    return {name: total / max(1, len(qrels)) for name, total in totals.items()}


# --- running a collection through Plaza's retrieval ------------------------------------


def index_corpus(
    texts: Sequence[str],
    *,
    encode: Callable[[list[str]], np.ndarray],
    dim: int,
    index_dir: str | Path,
    index_config: IndexConfig | None = None,
    batch: int = 256,
) -> tuple[SegmentedIndex, BM25Index]:
    """A fresh SegmentedIndex and BM25Index over texts, as the site builds them; text i
    gets id i + 1 (Plaza ids are positive ints)."""
    ids = np.arange(1, len(texts) + 1, dtype=np.int64)
    index = SegmentedIndex.open(index_dir, dim, config=index_config)
    for start in range(0, len(texts), batch):
        chunk = slice(start, start + batch)
        index.upsert(ids[chunk], encode(list(texts[chunk])), np.zeros(len(ids[chunk]), np.int64))
        index.commit()
    return index, BM25Index.build(ids, texts, langs=detect_languages(list(texts)))


class CorpusIndex(Protocol):
    """A collection's corpus indexed by one search backend: text i has id i + 1."""

    def dense(self, vector: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, cosines) nearest the unit (d,) vector, best first."""

    def lexical(self, text: str, depth: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(ids, BM25 scores, languages) of the best word matches, best first."""

    def close(self) -> None: ...


class LocalCorpusIndex:
    """The `faiss` backend's engines on a corpus: a SegmentedIndex and a BM25Index."""

    def __init__(self, index: SegmentedIndex, bm25: BM25Index):
        self.index, self.bm25 = index, bm25

    def dense(self, vector, depth):
        scores, ids = self.index.search(np.asarray(vector, np.float32).reshape(1, -1), depth)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def lexical(self, text, depth):
        scores, ids = self.bm25.search(text, depth)
        return ids, scores, [str(x) for x in self.bm25.langs[self.bm25.positions_of(ids)]]

    def close(self) -> None:
        self.index.close()


def run_collection(
    collection: BeirCollection,
    *,
    encode: Callable[[list[str]], np.ndarray],
    encoder_languages: Sequence[str] | None,
    build: Callable[[list[str]], CorpusIndex],
    fusion: FusionConfig | None = None,
    depth: int = 100,
) -> dict[str, dict[str, list[str]]]:
    """Index the corpus with `build(texts)` (a search backend, as the site builds it) and
    rank every query by `dense`, `bm25`, `hybrid` (ml.hybrid's fusion, as the site's) and
    `rrf` (plain, unweighted RRF): {method: {query id: [doc id, ...]}}."""
    doc_ids = list(collection.corpus)
    index = build([collection.corpus[d] for d in doc_ids])
    query_ids = list(collection.queries)
    vectors = encode([collection.queries[q] for q in query_ids])  # one batched pass
    runs: dict[str, dict[str, list[str]]] = {m: {} for m in ("dense", "bm25", "hybrid", "rrf")}
    try:
        for query_id, vector in zip(query_ids, vectors, strict=True):
            text = collection.queries[query_id]
            dense = index.dense(vector, depth)
            ids, scores, langs = index.lexical(text, depth)
            for method, pair in (("dense", (dense, None)), ("bm25", (None, (ids, scores)))):
                ranked = _fused(text, *pair, langs, encoder_languages, depth, fusion)
                runs[method][query_id] = [doc_ids[f.id - 1] for f in ranked.fused[:depth]]
            ranked = _fused(text, dense, (ids, scores), langs, encoder_languages, depth, fusion)
            runs["hybrid"][query_id] = [doc_ids[f.id - 1] for f in ranked.fused[:depth]]
            plain = fuse({m: list(ranked.scores[m]) for m in ranked.scores}, None, fusion)
            runs["rrf"][query_id] = [doc_ids[f.id - 1] for f in plain[:depth]]
    finally:
        index.close()
    return runs


def _fused(text, dense, lexical, langs, encoder_languages, depth, fusion):
    return hybrid_fuse(
        text,
        dense=dense if dense is not None and len(dense[0]) else None,
        lexical=lexical if lexical is not None and len(lexical[0]) else None,
        lexical_langs=langs,
        encoder_languages=encoder_languages,
        depth=depth,
        config=fusion,
        detect=detect_language,
    )


def baseline_dense_runs(
    collection: BeirCollection, *, model_path: str, depth: int = 100
) -> dict[str, list[str]]:
    """The plain pipeline: sentence-transformers encode + an exact faiss IndexFlatIP."""
    import faiss
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    doc_ids = list(collection.corpus)
    docs = model.encode(
        [collection.corpus[d] for d in doc_ids], normalize_embeddings=True, convert_to_numpy=True
    ).astype(np.float32)
    flat = faiss.IndexFlatIP(docs.shape[1])
    flat.add(docs)
    query_ids = list(collection.queries)
    queries = model.encode(
        [collection.queries[q] for q in query_ids], normalize_embeddings=True, convert_to_numpy=True
    ).astype(np.float32)
    _, found = flat.search(queries, min(depth, len(doc_ids)))
    return {q: [doc_ids[i] for i in row if i >= 0] for q, row in zip(query_ids, found, strict=True)}
