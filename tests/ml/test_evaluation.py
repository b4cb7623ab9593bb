"""ml.evaluation: retrieval metrics on hand-computed cases and BEIR folder loading."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ml.evaluation import METRICS, BeirFormatError, evaluate_run, load_beir, query_scores

# --- query_scores -------------------------------------------------------------------------


def test_one_relevant_document_at_rank_three():
    """A single relevant doc at rank 3: nDCG = 1/log2(4) = 0.5, recall 1, MRR 1/3."""
    got = query_scores(["a", "b", "rel", "c"], {"rel": 1})
    assert got == pytest.approx(
        {"ndcg@10": 0.5, "recall@10": 1.0, "recall@100": 1.0, "mrr@10": 1 / 3}
    )


def test_perfect_ranking_scores_one():
    """The ideal order of the judged documents scores 1 on every metric."""
    got = query_scores(["x", "y", "z"], {"x": 2, "y": 1, "z": 1})
    assert got == pytest.approx(dict.fromkeys(METRICS, 1.0))


def test_graded_judgements_use_exponential_gains():
    """nDCG gains are 2^grade - 1 over log2(rank + 1), against the ideal order of grades."""
    got = query_scores(["b", "a", "junk"], {"a": 2, "b": 1, "c": 0})
    dcg = (2**1 - 1) / math.log2(2) + (2**2 - 1) / math.log2(3)
    ideal = (2**2 - 1) / math.log2(2) + (2**1 - 1) / math.log2(3)
    assert got["ndcg@10"] == pytest.approx(dcg / ideal)
    assert got["recall@10"] == 1.0 and got["mrr@10"] == 1.0


def test_recall_at_10_and_at_100_and_mrr_cutoffs():
    """A relevant doc past rank 10 counts for recall@100 only; MRR looks at the top 10."""
    ranked = [f"d{i}" for i in range(1, 151)]  # d1 .. d150
    judged = {"d4": 1, "d11": 1, "d100": 1, "d101": 1}
    got = query_scores(ranked, judged)
    assert got["recall@10"] == pytest.approx(1 / 4)
    assert got["recall@100"] == pytest.approx(3 / 4)
    assert got["mrr@10"] == pytest.approx(1 / 4)
    late = query_scores(ranked, {"d11": 1})
    assert late["mrr@10"] == 0.0 and late["ndcg@10"] == 0.0 and late["recall@100"] == 1.0


def test_grade_zero_judgements_are_not_relevant():
    """A doc judged 0 earns no gain and no recall; a query with only zeros scores 0."""
    got = query_scores(["zero", "rel"], {"zero": 0, "rel": 1})
    assert got["mrr@10"] == 0.5
    assert got["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert query_scores(["zero"], {"zero": 0}) == dict.fromkeys(METRICS, 0.0)


def test_empty_ranking_scores_zero():
    """Retrieving nothing scores 0 on every metric."""
    assert query_scores([], {"a": 1}) == dict.fromkeys(METRICS, 0.0)


def test_a_repeated_document_counts_once():
    """nDCG never exceeds 1: a relevant document listed twice earns its gain once."""
    got = query_scores(["rel", "rel", "rel"], {"rel": 1})
    assert got["ndcg@10"] == pytest.approx(1.0)


# --- evaluate_run -------------------------------------------------------------------------


def test_evaluate_run_averages_over_the_judged_queries():
    """Each metric is the mean over qrels' queries; a query missing from runs scores 0;
    a run for a query without judgements is ignored."""
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    runs = {"q1": ["a"], "q2": ["x", "x2", "b"], "unjudged": ["a"]}
    got = evaluate_run(runs, qrels)
    assert set(got) == set(METRICS)
    assert got["ndcg@10"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert got["mrr@10"] == pytest.approx((1.0 + 1 / 3 + 0.0) / 3)
    assert got["recall@10"] == pytest.approx(2 / 3)


def test_evaluate_run_without_queries_is_zero():
    """No judged queries: every metric is 0, not a division by zero."""
    assert evaluate_run({"q": ["a"]}, {}) == dict.fromkeys(METRICS, 0.0)


# --- load_beir ----------------------------------------------------------------------------


def write_beir(folder: Path, corpus=None, queries=None, qrels=None) -> Path:
    """A BEIR folder; pass a str to write a file verbatim, None for the default content."""
    corpus = (
        corpus
        if corpus is not None
        else [
            {"_id": "d1", "title": "Vacunas", "text": "La tercera dosis llega."},
            {"_id": "d2", "title": "", "text": "Rain in London."},
            {"_id": 3, "text": "Coffee prices rise."},
            {"_id": "d4", "title": "Only a title"},
        ]
    )
    queries = (
        queries
        if queries is not None
        else [
            {"_id": "q1", "text": "tercera dosis"},
            {"_id": "q2", "text": "london rain"},
            {"_id": "q3", "text": "never judged"},
        ]
    )
    qrels = (
        qrels
        if qrels is not None
        else "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\t3\t0\nq9\td1\t1\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        text = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


def test_load_beir_reads_a_small_folder(tmp_path):
    """Titles and texts are joined, the qrels header is skipped, ids become strings, and
    only queries that have judgements (and judgements of asked queries) are kept."""
    collection = load_beir(write_beir(tmp_path / "beir"))
    assert collection.corpus == {
        "d1": "Vacunas La tercera dosis llega.",
        "d2": "Rain in London.",
        "3": "Coffee prices rise.",
        "d4": "Only a title",
    }
    assert collection.queries == {"q1": "tercera dosis", "q2": "london rain"}
    assert collection.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "3": 0}}


def test_load_beir_keeps_a_first_row_that_is_data(tmp_path):
    """A qrels file without a header keeps its first row; blank JSONL lines are skipped."""
    folder = write_beir(
        tmp_path / "beir",
        queries='{"_id": "q1", "text": "tercera dosis"}\n\n{"_id": "q2", "text": "rain"}\n',
        qrels="q1\td1\t1\nq2\td2\t1\n",
    )
    collection = load_beir(folder)
    assert collection.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert list(collection.queries) == ["q1", "q2"]


def test_load_beir_reads_another_split(tmp_path):
    """split= picks qrels/<split>.tsv."""
    folder = write_beir(tmp_path / "beir")
    (folder / "qrels" / "dev.tsv").write_text("q2\td2\t1\n", encoding="utf-8")
    assert load_beir(folder, split="dev").qrels == {"q2": {"d2": 1}}


@pytest.mark.parametrize(
    ("breakage", "fragments"),
    [
        (
            {"corpus": '{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": \n'},
            ["corpus.jsonl:2:", "not JSON"],
        ),
        ({"queries": '{"_id": "q1"}\n\n["q2"]\n'}, ["queries.jsonl:3:", "_id"]),
        ({"queries": '{"text": "no id"}\n'}, ["queries.jsonl:1:", "_id"]),
        (
            {"qrels": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\thigh\n"},
            ["test.tsv:3:", "'high'", "not an integer"],
        ),
        ({"qrels": "q1\td1\t1\nq2 d2 1\n"}, ["test.tsv:2:", "query-id, corpus-id, score"]),
    ],
)
def test_malformed_files_are_named_with_their_line(tmp_path, breakage, fragments):
    """A malformed line raises BeirFormatError (a ValueError) naming file:line and why."""
    folder = write_beir(tmp_path / "beir", **breakage)
    with pytest.raises(BeirFormatError) as caught:
        load_beir(folder)
    assert isinstance(caught.value, ValueError)
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_missing_files_are_named(tmp_path, missing):
    """A missing corpus, queries or qrels file raises BeirFormatError naming that file."""
    folder = write_beir(tmp_path / "beir")
    (folder / missing).unlink()
    with pytest.raises(BeirFormatError, match="missing") as caught:
        load_beir(folder)
    assert str(folder / missing) in str(caught.value)
