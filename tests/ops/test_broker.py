"""Queue depth read from the broker itself: messages published for real and counted on
the filesystem transport, Redis and RabbitMQ; a missing queue holds 0; a broker that is
down is reported unavailable, on the page and in /metrics, never as a 500."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from kombu import Connection, Exchange, Queue

from ops.broker import queue_depths

REDIS_URL = "redis://127.0.0.1:6379/14"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def reachable(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=0)
        return True
    except Exception:
        return False


def publish(url: str, queue: str, n: int, transport_options: dict | None = None) -> None:
    target = Queue(queue, Exchange(queue, type="direct"), routing_key=queue, durable=False)
    with (
        Connection(url, transport_options=transport_options or {}) as conn,
        conn.Producer() as producer,
    ):
        for i in range(n):
            producer.publish(
                {"n": i}, exchange=target.exchange, routing_key=queue, declare=[target]
            )


def delete_queue(url: str, queue: str) -> None:
    with Connection(url) as conn:
        channel = conn.default_channel
        try:
            channel.queue_purge(queue)  # on Redis, delete alone leaves the messages
            channel.queue_delete(queue)
        except conn.channel_errors:
            pass


def test_filesystem_broker_counts_published_messages(fs_broker):
    """Three messages to `index` and one to `gpu` count as such; `default`, never used, is 0."""
    fs_broker("index", 3)
    fs_broker("gpu", 1)
    depths = queue_depths(
        broker_url="filesystem://",
        queues=["default", "index", "gpu"],
        transport_options=fs_broker.transport_options,
    )
    assert depths.available and depths.error == ""
    assert depths.transport == "filesystem"
    assert depths.depths == {"default": 0, "index": 3, "gpu": 1}
    fs_broker("index", 2)
    again = queue_depths(
        broker_url="filesystem://", queues=["index"], transport_options=fs_broker.transport_options
    )
    assert again.depths == {"index": 5}


def test_redis_counts_published_messages():
    if not reachable(REDIS_URL):
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    queue = f"ops-test-{uuid.uuid4().hex[:8]}"
    missing = f"ops-missing-{uuid.uuid4().hex[:8]}"
    try:
        publish(REDIS_URL, queue, 4)
        depths = queue_depths(broker_url=REDIS_URL, queues=[queue, missing])
        assert depths.available and depths.transport == "redis"
        assert depths.depths == {queue: 4, missing: 0}
        assert "127.0.0.1:6379/14" in depths.broker
    finally:
        delete_queue(REDIS_URL, queue)
    assert queue_depths(broker_url=REDIS_URL, queues=[queue]).depths == {queue: 0}
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.keys(f"*{queue}*") or ["-"])  # kombu's binding keys for it


def test_rabbitmq_counts_published_messages():
    if not reachable(AMQP_URL):
        pytest.skip(f"RabbitMQ is not reachable at {AMQP_URL}")
    queue = f"ops-test-{uuid.uuid4().hex[:8]}"
    missing = f"ops-missing-{uuid.uuid4().hex[:8]}"
    try:
        publish(AMQP_URL, queue, 3, {"confirm_publish": True})  # routed when publish returns
        depths = queue_depths(broker_url=AMQP_URL, queues=[missing, queue])
        assert depths.available and depths.transport == "amqp"
        assert depths.depths == {missing: 0, queue: 3}
        assert "guest:**@" in depths.broker  # the password never shows
    finally:
        delete_queue(AMQP_URL, queue)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "amqp://guest:secret@127.0.0.1:1//"])
def test_a_broker_that_is_down_is_unavailable_not_an_error(url):
    started = time.monotonic()
    depths = queue_depths(broker_url=url, queues=["default", "index"], timeout_s=1)
    assert time.monotonic() - started < 10
    assert depths.available is False
    assert depths.depths == {}
    assert "refused" in depths.error.lower()
    assert "secret" not in depths.broker


@pytest.mark.django_db
def test_the_dashboard_reads_the_apps_own_queues(staff_client, fs_broker):
    """/ops/figures lists config/celery.py's queues with what waits in each, and how many
    live workers serve them (from the heartbeats)."""
    from ops.services import worker_heartbeat_record

    fs_broker("gpu", 2)
    worker_heartbeat_record(hostname="celery@gpu-1", queue="gpu")
    broker = staff_client.get("/ops/figures").json()["broker"]
    assert broker["available"] is True and broker["transport"] == "filesystem"
    assert broker["queues"] == [
        {"name": "default", "depth": 0, "workers": 0},
        {"name": "index", "depth": 0, "workers": 0},
        {"name": "gpu", "depth": 2, "workers": 1},
        {"name": "build", "depth": 0, "workers": 0},
    ]


@pytest.mark.django_db
def test_a_broker_that_is_down_shows_on_the_page_and_in_metrics(staff_client, down_broker):
    from prometheus_client.parser import text_string_to_metric_families

    figures = staff_client.get("/ops/figures")
    assert figures.status_code == 200
    broker = figures.json()["broker"]
    assert broker["available"] is False and "refused" in broker["error"].lower()
    assert {q["depth"] for q in broker["queues"]} == {None}
    page = staff_client.get("/ops/")
    assert page.status_code == 200
    assert "unavailable:" in page.content.decode()
    metrics = staff_client.get("/metrics")
    assert metrics.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(metrics.content.decode())}
    assert [s.value for s in families["plaza_broker_up"].samples] == [0.0]
    assert "plaza_queue_depth" not in families  # unknown, not zero
