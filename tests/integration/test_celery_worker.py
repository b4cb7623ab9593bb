"""A real Celery worker process, against Redis and against the embedded broker.

The worker is started as `celery -A config worker` in its own process, with the test
database and the broker under test; tasks travel through the broker to it and write
to the database, as in production.
"""

from __future__ import annotations

import os
import time

import pytest
import redis
from django.db import transaction

from config.celery import QUEUES
from ops.models import WorkerHeartbeat
from ops.services import worker_heartbeat_request
from tests.integration.workers import REDIS_URL, Worker, redis_available, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["embedded", "redis"])
def worker(request, tmp_path, monkeypatch):
    if request.param == "redis":
        if not redis_available():
            pytest.skip(f"Redis is not reachable at {REDIS_URL}")
        redis.Redis.from_url(REDIS_URL).flushdb()
        broker_url = REDIS_URL
    else:
        broker_url = "filesystem://"
    # Celery reads CELERY_BROKER_URL from the environment over any configured URL.
    monkeypatch.setenv("CELERY_BROKER_URL", broker_url)
    running = Worker(broker_url, tmp_path)
    yield running
    running.stop()


def test_task_runs_end_to_end_on_every_queue(worker):
    """A task sent to each queue is picked up by the worker, writes its row, returns."""
    client = worker.client()
    results = {
        queue: client.send_task("ops.tasks.worker_heartbeat", args=[queue], queue=queue)
        for queue in QUEUES
    }
    for queue, result in results.items():
        try:
            value = result.get(timeout=120)
        except Exception as exc:  # show the worker's log with whatever went wrong
            pytest.fail(f"{queue}: {exc!r}\n--- worker log ---\n{worker.output()}")
        assert value["queue"] == queue and value["beats"] == 1
    beats = WorkerHeartbeat.objects.order_by("queue")
    assert [beat.queue for beat in beats] == sorted(QUEUES)
    assert {beat.pid for beat in beats} != {os.getpid()}  # written by the worker, not us


def test_enqueue_on_commit_reaches_the_worker(configured_worker):
    """The service enqueues only when its transaction commits; a rollback sends nothing."""
    with pytest.raises(RuntimeError), transaction.atomic():
        worker_heartbeat_request(queue="default")
        raise RuntimeError("roll back")
    with transaction.atomic():
        worker_heartbeat_request(queue="index")
        time.sleep(1.0)  # still uncommitted: the worker cannot have it yet
        assert not WorkerHeartbeat.objects.exists()
    wait_for(lambda: WorkerHeartbeat.objects.filter(queue="index").exists(), 120, configured_worker)
    time.sleep(2.0)  # the rolled-back request must never arrive
    assert list(WorkerHeartbeat.objects.values_list("queue", flat=True)) == ["index"]
