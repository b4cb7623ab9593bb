"""/metrics: the ops page's figures for Prometheus, beside django-prometheus's own.

    body = generate_latest(metrics_registry())

django-prometheus's middleware counts requests and times them by view and method (and
counts responses by status, view and method); `PlazaCollector` reads the same figures as
the ops page at scrape time: the index, queue depth per queue from the broker, worker
heartbeats, jobs by kind and status. With PROMETHEUS_MULTIPROC_DIR set (several server
processes, e.g. gunicorn workers) the request metrics of every process are aggregated
from that folder by prometheus_client's MultiProcessCollector; the Plaza figures come
from the database and the broker, so any one process reads them whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ops import selectors

INDEX_GAUGES = [
    ("vectors", "plaza_index_vectors", "Live vectors in the search index."),
    ("active_vectors", "plaza_index_active_vectors", "Vectors in the active index segment."),
    ("sealed_segments", "plaza_index_sealed_segments", "Sealed index segments."),
    ("tombstones", "plaza_index_tombstones", "Deleted or replaced vectors not yet compacted."),
    ("bm25_documents", "plaza_index_bm25_documents", "Documents in the newest BM25 build."),
    ("queued", "plaza_index_queued_changes", "Changed posts waiting for the index."),
    (
        "freshness_lag_s",
        "plaza_index_freshness_lag_seconds",
        "Age of the oldest change not yet in the index (0 when none waits).",
    ),
]


class PlazaCollector(Collector):
    """Plaza's figures, read at each scrape (see the module docstring)."""

    def describe(self) -> list[Metric]:
        return []  # nothing is read at registration; the names are checked by tests

    def collect(self) -> Iterator[Metric]:
        yield from self._index()
        workers = selectors.worker_heartbeats(now=timezone.now())
        yield from self._broker()
        yield from self._workers(workers)
        yield from self._jobs()

    def _index(self) -> Iterator[Metric]:
        index = selectors.index_part()
        up = GaugeMetricFamily("plaza_index_up", "1 when the index's figures could be read.")
        up.add_metric([], 1 if index["available"] else 0)
        yield up
        if not index["available"]:
            return
        info = GaugeMetricFamily(
            "plaza_index_generation",
            "The live index generation (value 1) and its embedding model.",
            labels=["generation", "embed_model"],
        )
        if index["generation"]:
            info.add_metric([index["generation"], index["embed_model"]], 1)
        yield info
        for key, name, documentation in INDEX_GAUGES:
            gauge = GaugeMetricFamily(name, documentation)
            gauge.add_metric([], float(index[key]))
            yield gauge
        if index["last_flush_lag_s"] is not None:
            gauge = GaugeMetricFamily(
                "plaza_index_last_flush_lag_seconds",
                "The last index batch's oldest change to its commit.",
            )
            gauge.add_metric([], float(index["last_flush_lag_s"]))
            yield gauge
        if index["last_flush_at"] is not None:
            gauge = GaugeMetricFamily(
                "plaza_index_last_flush_timestamp_seconds",
                "When the last batch reached the index (Unix time).",
            )
            gauge.add_metric([], index["last_flush_at"].timestamp())
            yield gauge

    def _broker(self) -> Iterator[Metric]:
        depths = selectors.broker_queue_depths()
        up = GaugeMetricFamily(
            "plaza_broker_up", "1 when the Celery broker answered.", labels=["transport"]
        )
        up.add_metric([depths.transport], 1 if depths.available else 0)
        yield up
        if not depths.available:
            return  # unknown, not zero: the series go missing rather than lie
        gauge = GaugeMetricFamily(
            "plaza_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        for queue, depth in depths.depths.items():
            gauge.add_metric([queue], depth)
        yield gauge

    def _workers(self, workers: list[dict]) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "plaza_worker_heartbeat_age_seconds",
            "Seconds since a worker last checked in on a queue.",
            labels=["queue", "hostname"],
        )
        alive = dict.fromkeys(selectors.celery_queues(), 0)
        for worker in workers:
            gauge.add_metric([worker["queue"], worker["hostname"]], worker["age_s"])
            if worker["alive"]:
                alive[worker["queue"]] = alive.get(worker["queue"], 0) + 1
        yield gauge
        serving = GaugeMetricFamily(
            "plaza_queue_workers",
            f"Workers that checked in on a queue in the last {selectors.HEARTBEAT_STALE_S} s.",
            labels=["queue"],
        )
        for queue, count in alive.items():
            serving.add_metric([queue], count)
        yield serving

    def _jobs(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "plaza_jobs",
            "Jobs (answers, drafts, training runs) by status.",
            labels=["kind", "status"],
        )
        up = GaugeMetricFamily(
            "plaza_jobs_up", "1 when a kind of job could be counted.", labels=["kind"]
        )
        for part in selectors.jobs_part(limit=0):
            up.add_metric([part["kind"]], 1 if part["available"] else 0)
            for status, count in (part.get("counts") or {}).items():
                gauge.add_metric([part["kind"], status], count)
        yield gauge
        yield up


def metrics_registry() -> CollectorRegistry:
    """A registry for one scrape: the process's (or, with PROMETHEUS_MULTIPROC_DIR, every
    process's) request metrics, and Plaza's figures."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)  # this process's metrics: django-prometheus, the runtime
    registry.register(PlazaCollector())
    return registry
