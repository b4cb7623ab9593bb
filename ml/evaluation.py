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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
    """The four metrics for one query's ranking."""
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
