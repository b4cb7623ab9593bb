"""/metrics in the Prometheus text format, parsed: Plaza's figures read at scrape time
(jobs by kind and status, heartbeat ages, queue depth from the broker, the index) beside
django-prometheus's request latency histograms; aggregated across processes when
PROMETHEUS_MULTIPROC_DIR is set."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db


def scrape(client) -> dict:
    """{metric name: {frozenset(labels.items()): value}} of every sample."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def labels(**values) -> frozenset:
    return frozenset(values.items())


def make_jobs(advertisers):
    from ads.models import Campaign, DraftJob, TrainingRun
    from search.models import Answer

    for status in ("done", "done", "failed", "running"):
        Answer.objects.create(question=f"q {status}", status=status)
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"], name="Boots", description="Boots."
    )
    DraftJob.objects.create(campaign=campaign, n=4, status="failed", error="boom")
    DraftJob.objects.create(campaign=campaign, n=4, status="succeeded", kept=4)
    TrainingRun.objects.create(
        adapter_name="boots", base_model="m", dataset="creatives", steps=10, status="queued"
    )


def test_jobs_are_counted_by_kind_and_status(staff_client, advertisers, index_dir):
    make_jobs(advertisers)
    jobs = scrape(staff_client)["plaza_jobs"]
    assert jobs[labels(kind="answers", status="done")] == 2
    assert jobs[labels(kind="answers", status="failed")] == 1
    assert jobs[labels(kind="answers", status="running")] == 1
    assert jobs[labels(kind="answers", status="queued")] == 0
    assert jobs[labels(kind="drafts", status="failed")] == 1
    assert jobs[labels(kind="drafts", status="succeeded")] == 1
    assert jobs[labels(kind="training", status="queued")] == 1
    assert jobs[labels(kind="training", status="failed")] == 0


def test_heartbeat_age_per_worker_and_queue(staff_client, index_dir):
    from ops.models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="celery@a", queue="index", pid=7, seen_at=now - timedelta(seconds=42)
    )
    WorkerHeartbeat.objects.create(
        hostname="celery@b", queue="gpu", pid=8, seen_at=now - timedelta(minutes=10)
    )
    metrics = scrape(staff_client)
    ages = metrics["plaza_worker_heartbeat_age_seconds"]
    assert 42 <= ages[labels(queue="index", hostname="celery@a")] < 52
    assert 600 <= ages[labels(queue="gpu", hostname="celery@b")] < 610
    serving = metrics["plaza_queue_workers"]
    assert serving == {
        labels(queue="default"): 0,
        labels(queue="index"): 1,  # a's beat is fresh
        labels(queue="gpu"): 0,  # b has been silent for ten minutes
        labels(queue="build"): 0,
    }


def test_queue_depth_comes_from_the_broker(staff_client, fs_broker, index_dir):
    fs_broker("index", 3)
    fs_broker("default", 1)
    metrics = scrape(staff_client)
    assert metrics["plaza_broker_up"] == {labels(transport="filesystem"): 1}
    assert metrics["plaza_queue_depth"] == {
        labels(queue="default"): 1,
        labels(queue="index"): 3,
        labels(queue="gpu"): 0,
        labels(queue="build"): 0,
    }


def test_request_latency_is_a_histogram_by_view_and_method(staff_client, index_dir):
    """django-prometheus times each request by view name and method, and counts
    responses by status, view and method."""
    name = "django_http_requests_latency_seconds_by_view_method_count"
    key = labels(view="ops-figures", method="GET")
    before = scrape(staff_client).get(name, {}).get(key, 0)
    staff_client.get("/ops/figures")
    staff_client.get("/ops/figures")
    metrics = scrape(staff_client)
    assert metrics[name][key] == before + 2
    buckets = {
        dict(k)["le"]: v
        for k, v in metrics["django_http_requests_latency_seconds_by_view_method_bucket"].items()
        if dict(k)["view"] == "ops-figures"
    }
    assert buckets["+Inf"] == before + 2
    responses = metrics["django_http_responses_total_by_status_view_method_total"]
    assert responses[labels(status="200", view="ops-figures", method="GET")] >= 2


def test_the_index_before_any_build(staff_client, index_dir):
    metrics = scrape(staff_client)
    assert metrics["plaza_index_up"] == {labels(): 1}
    assert metrics["plaza_index_vectors"] == {labels(): 0}
    assert "plaza_index_generation" not in metrics  # no live generation yet


@pytest.mark.integration
def test_the_index_figures_after_indexing(staff_client, ops_posts):
    """The real encoder indexes the posts: vectors, BM25 documents and the generation show;
    a hidden post leaves the vectors and, once its segment is sealed, is a tombstone."""
    from posts.services import post_set_hidden
    from search import indexes
    from search.models import IndexGeneration
    from search.services import index_sync as services

    before = scrape(staff_client)
    assert before["plaza_index_queued_changes"] == {labels(): len(ops_posts)}
    services.index_flush()
    generation = IndexGeneration.objects.get(state="live")
    indexes.writer_for(generation).seal()
    metrics = scrape(staff_client)
    assert metrics["plaza_index_vectors"] == {labels(): len(ops_posts)}
    assert metrics["plaza_index_bm25_documents"] == {labels(): len(ops_posts)}
    assert metrics["plaza_index_sealed_segments"] == {labels(): 1}
    assert metrics["plaza_index_queued_changes"] == {labels(): 0}
    assert metrics["plaza_index_freshness_lag_seconds"] == {labels(): 0}
    assert metrics["plaza_index_last_flush_lag_seconds"][labels()] > 0
    assert metrics["plaza_index_generation"] == {
        labels(generation=generation.name, embed_model=generation.embed_model): 1
    }
    post_set_hidden(post_ids=[ops_posts["o2"].pk], hidden=True)
    services.index_flush()
    after = scrape(staff_client)
    assert after["plaza_index_vectors"] == {labels(): len(ops_posts) - 1}
    assert after["plaza_index_tombstones"] == {labels(): 1}


CHILD = textwrap.dedent(
    """
    import sys
    from prometheus_client import Counter
    Counter("plaza_test_child_work", "Work done in a child process.").inc(int(sys.argv[1]))
    """
)


def test_multiprocess_mode_adds_up_every_process(staff_client, tmp_path, monkeypatch, index_dir):
    """With PROMETHEUS_MULTIPROC_DIR set, /metrics sums what every process wrote there (two
    child processes here, 2 + 3) and still carries Plaza's own figures."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    for amount in ("2", "3"):
        subprocess.run([sys.executable, "-c", CHILD, amount], env=env, check=True, timeout=60)
    assert len(list(folder.glob("counter_*.db"))) == 2  # one file per process
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    metrics = scrape(staff_client)
    assert metrics["plaza_test_child_work_total"] == {labels(): 5}
    assert "plaza_index_up" in metrics and "plaza_jobs" in metrics
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert "plaza_test_child_work_total" not in scrape(staff_client)
