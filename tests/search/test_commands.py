"""The index commands (reconcile, reindex, evaluate_search) and generation upkeep."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from posts.models import Post
from search import indexes
from search.backends import search_backend
from search.models import IndexGeneration, IndexQueueEntry
from search.services import generations

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.integration
def test_reconcile_reports_and_repairs_inline(indexed_posts):
    """`reconcile --inline` names what was wrong, repairs it, and a second run finds
    nothing; --json ends with the summary."""
    generation = indexes.live_generation(fresh=True)
    backend = search_backend()
    lost = indexed_posts["3"]
    backend.delete(generation, [lost.pk])
    backend.commit(generation)
    output = run("reconcile", "--inline", "--json")
    assert f"missing: 1 (post ids {lost.pk})" in output
    summary = json.loads(output.strip().splitlines()[-1])
    assert (summary["missing"], summary["stale"], summary["removed"]) == (1, 0, 0)
    assert summary["applied"] is True and not IndexQueueEntry.objects.exists()
    assert lost.pk in backend.ids(generation)
    assert "index matches the database" in run("reconcile")


@pytest.mark.integration
def test_reconcile_without_a_worker_leaves_the_repairs_queued(indexed_posts):
    """Without --inline the repairs wait in the queue for the index worker."""
    Post.objects.filter(pk=indexed_posts["5"].pk).update(is_hidden=True)
    output = run("reconcile")
    assert "removed 1: 1 queued for the index worker" in output
    assert list(IndexQueueEntry.objects.values_list("post_id", flat=True)) == [
        indexed_posts["5"].pk
    ]


@pytest.mark.integration
def test_reindex_builds_and_swaps_a_new_generation(indexed_posts):
    """`reindex` leaves one live generation, the new one, holding every visible post."""
    old = indexes.live_generation(fresh=True)
    output = run("reindex", "--no-progress")
    live = IndexGeneration.objects.get(state="live")
    assert live.name != old.name and f"generation {live.name} is live" in output
    assert live.posts_done == Post.objects.visible().count()
    assert IndexGeneration.objects.get(pk=old.pk).state == "retired"


@pytest.mark.integration
def test_reindex_with_an_unknown_model_says_so(index_dir):
    """A bad --model is a clear command error, and no generation is left behind."""
    with pytest.raises(CommandError, match="--model: .*does not exist"):
        run("reindex", "--model", "./no/such/model", "--no-progress")
    assert not IndexGeneration.objects.exists()


@pytest.mark.integration
def test_a_model_change_queues_one_rebuild(indexed_posts, settings, monkeypatch):
    """When PLAZA_EMBED_MODEL no longer matches the live generation, reconcile's check
    queues one rebuild with the new model; none while one is building, none when equal."""
    from search.tasks import index as tasks

    sent = []
    monkeypatch.setattr(tasks.generation_build, "apply_async", lambda args: sent.append(args))
    assert generations.generation_model_check() is False
    settings.PLAZA_EMBED_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
    assert generations.generation_model_check() is True
    assert sent == [(settings.PLAZA_EMBED_MODEL,)]
    IndexGeneration.objects.create(
        name="next", embed_model="x", dim=384, backend=search_backend().name
    )  # building
    assert generations.generation_model_check() is False


@pytest.mark.integration
def test_deleting_a_retired_generation_removes_its_index(
    indexed_posts, django_capture_on_commit_callbacks
):
    """Retired generations go with their indexes; the live one is never deleted."""
    old = indexes.live_generation(fresh=True)
    generations.generation_build()
    old.refresh_from_db()
    live = IndexGeneration.objects.get(state="live")
    with django_capture_on_commit_callbacks(execute=True):
        deleted = generations.generation_delete(generations=[old, live])
    assert deleted == 1
    assert not search_backend().generation_exists(old)
    assert search_backend().generation_exists(live)
    assert list(IndexGeneration.objects.values_list("name", flat=True)) == [live.name]


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        ("d1", "Bread", "Sourdough bread needs a long cold fermentation of the dough."),
        ("d2", "Football", "The football final ended with a penalty shootout."),
        ("d3", "Rain", "Heavy rain flooded the streets of the old town."),
        ("d4", "Coffee", "Coffee prices rose after a poor harvest in Brazil."),
    ]
    queries = [("q1", "how long does sourdough ferment"), ("q2", "why is coffee expensive")]
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, title, text in corpus:
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for query_id, text in queries:
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\n")
    return folder


@pytest.mark.integration
def test_evaluate_search_prints_the_table_and_one_json_line(index_dir, tmp_path):
    """The last line is {"dense": {...}, "bm25": {...}, "hybrid": {...}} with the four
    metrics; the table shows the plain baseline beside them. Easy queries score 1."""
    output = run("evaluate_search", str(write_beir(tmp_path / "beir")), "--json")
    lines = output.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"dense", "bm25", "hybrid"}
    for scores in result.values():
        assert set(scores) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert result["hybrid"]["ndcg@10"] == pytest.approx(1.0)
    assert any(line.startswith("baseline") for line in lines)


def test_evaluate_search_names_a_broken_file(index_dir, tmp_path):
    """A malformed collection is a command error naming the file and line."""
    folder = write_beir(tmp_path / "beir")
    with (folder / "queries.jsonl").open("a") as out:
        out.write("{not json\n")
    with pytest.raises(CommandError, match=r"queries.jsonl:3: not JSON"):
        run("evaluate_search", str(folder))
    with pytest.raises(CommandError, match="not a folder"):
        run("evaluate_search", str(tmp_path / "missing"))


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("name", ["xquad-en", "xquad-es", "xquad-es-en"])
def test_hybrid_is_within_a_hundredth_of_the_better_method(shared_data, index_dir, name):
    """On each shared XQuAD set: dense through Plaza's pipeline scores what the plain
    baseline scores, and hybrid nDCG@10 is at least the better single method's - 0.01."""
    output = run("evaluate_search", str(shared_data / "retrieval" / name), "--json")
    lines = output.strip().splitlines()
    result = json.loads(lines[-1])
    baseline = float(next(line for line in lines if line.startswith("baseline")).split()[-4])
    assert result["dense"]["ndcg@10"] >= baseline - 1e-3
    best = max(result["dense"]["ndcg@10"], result["bm25"]["ndcg@10"])
    assert result["hybrid"]["ndcg@10"] >= best - 0.01


@pytest.mark.integration
def test_evaluate_answers_answers_every_question_and_prints_one_json_line(index_dir, tmp_path):
    """The real chain answers each question over the collection's own index: the last line
    holds the rates and latencies, every answer rests on a retrieved passage, and a gold
    answer the model cannot miss is found."""
    folder = write_beir(tmp_path / "beir")
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"_id": "q1", "en": ["ferment"]}\n{"_id": "q2", "en": ["coffee"]}\n')
    details = tmp_path / "details.jsonl"
    output = run(
        "evaluate_answers", str(folder), "--answers", str(answers), "--json",
        "--details", str(details),
    )  # fmt: skip
    figures = json.loads(output.strip().splitlines()[-1])
    assert figures["questions"] == 2 and figures["retrieved_a_relevant_post"] == 1.0
    assert 0 <= figures["no_valid_citation"] <= figures["no_valid_citation_written"] <= 1
    assert figures["gold_answer_rate"] > 0 and figures["first_token_after_retrieval_ms_p50"] > 0
    assert figures["supported_sentence_rate"] == 1.0 and figures["valid_citation"] == 1.0
    assert figures["example_leaks"] == 0 and figures["answer_chars_max"] <= 300
    rows = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == ["q1", "q2"]
    assert sum(row["contains_gold"] for row in rows) / 2 == figures["gold_answer_rate"]
    for row in rows:
        assert row["read"] and row["answer"].startswith(row["sentences"][0]["text"][:10])
        numbers = {n for s in row["sentences"] for n in s["sources"]}
        assert numbers and numbers <= set(range(1, len(row["read"]) + 1))
        assert all(s["independently_supported"] for s in row["sentences"])
        assert row["language"] == "en" and row["example_leaks"] == []
    with pytest.raises(CommandError, match="no gold answers for this collection"):
        run("evaluate_answers", str(folder), "--answers", str(answers), "--lang", "fr")
