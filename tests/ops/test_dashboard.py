"""The ops dashboard and its JSON: the index's figures change as posts are indexed, open
and recently failed jobs are listed with their errors, everything a job carries is
escaped, and a part that cannot be read is reported while the rest still shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ops import registry

pytestmark = pytest.mark.django_db

SCRIPT = '<script>alert("ops")</script>'


@pytest.fixture
def campaign(advertisers):
    from ads.models import Campaign

    return Campaign.objects.create(
        advertiser=advertisers["acme"], name="Spring <b>boots</b>", description="Boots."
    )


def test_job_errors_and_titles_are_escaped(staff_client, campaign, index_dir):
    """An error or a question carrying markup is shown as text: the page holds it escaped,
    never as a tag (the JSON carries the text as it is, for the script to set as text)."""
    from ads.models import DraftJob
    from search.models import Answer

    Answer.objects.create(question=f"why {SCRIPT}?", status="failed", error=f"model said {SCRIPT}")
    DraftJob.objects.create(campaign=campaign, n=2, status="failed", error=f"{SCRIPT} in draft")
    page = staff_client.get("/ops/").content.decode()
    assert SCRIPT not in page
    assert "<b>boots</b>" not in page
    assert "model said &lt;script&gt;alert(&quot;ops&quot;)&lt;/script&gt;" in page
    assert "why &lt;script&gt;" in page
    assert "Spring &lt;b&gt;boots&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(&quot;ops&quot;)&lt;/script&gt; in draft" in page
    jobs = {part["kind"]: part for part in staff_client.get("/ops/figures").json()["jobs"]}
    assert jobs["answers"]["failed"][0]["error"] == f"model said {SCRIPT}"


def test_open_and_recently_failed_jobs_are_listed(staff_client, campaign, index_dir):
    """Open jobs oldest first, failures of the last day newest first with their errors and
    admin links; an older failure is counted but not listed."""
    from ads.models import DraftJob, TrainingRun
    from search.models import Answer

    running = Answer.objects.create(question="what runs?", status="running")
    queued = Answer.objects.create(question="what waits?", status="queued")
    Answer.objects.create(question="done", status="done")
    old = Answer.objects.create(question="long ago", status="failed", error="old error")
    Answer.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=2))
    recent = Answer.objects.create(question="just now", status="failed", error="deadline")
    job = DraftJob.objects.create(campaign=campaign, n=4, status="running", kept=1)
    run = TrainingRun.objects.create(
        adapter_name="boots", base_model="m", dataset="creatives", steps=10, step=3,
        status="failed", error="CUDA out of memory",
    )  # fmt: skip

    jobs = {part["kind"]: part for part in staff_client.get("/ops/figures").json()["jobs"]}
    assert [p["label"] for p in jobs.values()] == ["Answers", "Ad drafts", "Training runs"]
    answers = jobs["answers"]
    assert answers["counts"] == {"queued": 1, "running": 1, "done": 1, "failed": 2}
    assert [row["id"] for row in answers["running"]] == [str(running.pk), str(queued.pk)]
    assert [(row["id"], row["error"]) for row in answers["failed"]] == [
        (str(recent.pk), "deadline")
    ]
    assert answers["failed"][0]["admin_url"] == f"/admin/search/answer/{recent.pk}/change/"
    drafts = jobs["drafts"]["running"]
    assert [(row["id"], row["progress"]) for row in drafts] == [(str(job.pk), 0.25)]
    training = jobs["training"]["failed"]
    assert [(row["id"], row["error"], row["progress"]) for row in training] == [
        (str(run.pk), "CUDA out of memory", 0.3)
    ]
    page = staff_client.get("/ops/").content.decode()
    assert "CUDA out of memory" in page and "deadline" in page
    assert "old error" not in page
    assert f"/admin/ads/trainingrun/{run.pk}/change/" in page


def test_an_index_that_cannot_be_read_is_reported_not_a_500(staff_client, monkeypatch):
    def broken():
        raise OSError("manifest.json: permission denied")

    monkeypatch.setattr(registry, "_index_reader", [broken])
    figures = staff_client.get("/ops/figures").json()
    assert figures["index"] == {
        "available": False,
        "error": "OSError: manifest.json: permission denied",
    }
    assert figures["broker"]["queues"]  # the other parts still show
    page = staff_client.get("/ops/")
    assert page.status_code == 200
    assert "Index figures unavailable" in page.content.decode()
    metrics = staff_client.get("/metrics").content.decode()
    assert "plaza_index_up 0.0" in metrics
    assert "plaza_index_vectors" not in metrics
    assert staff_client.get("/healthz").json()["index"]["error"] is True


def test_a_kind_of_job_that_cannot_be_read_is_reported(staff_client, monkeypatch, index_dir):
    def broken(*, failed_since, limit):
        raise RuntimeError("no such table: ads_draftjob")

    sources = dict(registry._jobs_sources)
    monkeypatch.setattr(registry, "_jobs_sources", sources)
    registry.jobs_register(kind="drafts", label="Ad drafts", report=broken)
    jobs = {part["kind"]: part for part in staff_client.get("/ops/figures").json()["jobs"]}
    assert jobs["drafts"] == {
        "kind": "drafts",
        "label": "Ad drafts",
        "available": False,
        "error": "RuntimeError: no such table: ads_draftjob",
    }
    assert jobs["answers"]["available"] is True
    assert "no such table: ads_draftjob" in staff_client.get("/ops/").content.decode()
    assert 'plaza_jobs_up{kind="drafts"} 0.0' in staff_client.get("/metrics").content.decode()


@pytest.mark.integration
def test_the_figures_change_as_posts_are_indexed(staff_client, ops_posts):
    """The real encoder and index: waiting changes before the flush; vectors, BM25
    documents and the live generation after it; one fewer vector once a post is hidden."""
    from posts.services import post_set_hidden
    from search.services import index_sync as services

    index = staff_client.get("/ops/figures").json()["index"]
    assert index["available"] is True
    assert index["generation"] is None and index["vectors"] == 0
    assert index["queued"] == len(ops_posts)
    assert index["freshness_lag_s"] >= 0

    services.index_flush()
    index = staff_client.get("/ops/figures").json()["index"]
    assert index["generation"]
    assert index["vectors"] == index["bm25_documents"] == index["active_vectors"] == 5
    assert index["queued"] == 0 and index["freshness_lag_s"] == 0
    assert index["last_flush_posts"] == 5 and index["last_flush_at"]
    page = staff_client.get("/ops/").content.decode()
    assert f'<dd data-key="generation">{index["generation"]}</dd>' in page
    assert '<dd data-key="vectors">5</dd>' in page

    post_set_hidden(post_ids=[ops_posts["o1"].pk], hidden=True)
    assert staff_client.get("/ops/figures").json()["index"]["queued"] == 1
    services.index_flush()
    index = staff_client.get("/ops/figures").json()["index"]
    assert index["vectors"] == 4 and index["queued"] == 0
