"""Queue depth read from the Celery broker itself, through kombu, on any transport.

    depths = queue_depths(broker_url="redis://...", queues=["default", "index", "gpu"])
    depths.available, depths.depths["index"]      # True, 3

A passive `queue_declare` returns the queue's message count on Redis, RabbitMQ and the
filesystem transport alike, without creating the queue. A queue the broker does not know
(never declared, or on Redis an empty one: its list is gone) holds nothing: 0. A broker
that cannot be reached is reported unavailable with the reason, in `timeout_s`, never
raised. The count is of messages waiting: a task a worker has taken (acknowledged late,
so still in the broker) is no longer counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kombu import Connection

logger = logging.getLogger(__name__)


@dataclass
class QueueDepths:
    broker: str  # the broker's URL, password masked (a filesystem broker's folder)
    transport: str  # redis, amqp, filesystem ...
    available: bool
    error: str = ""  # why the broker could not be read, when it could not
    depths: dict[str, int] = field(default_factory=dict)  # messages waiting, per queue


def queue_depths(
    *,
    broker_url: str,
    queues: list[str],
    transport_options: dict | None = None,
    timeout_s: float = 2.0,
) -> QueueDepths:
    """The number of messages waiting in each of `queues` (see the module docstring)."""
    options = dict(transport_options or {})
    if broker_url.startswith(("redis://", "rediss://")):
        # A Redis that accepts the connection but never answers must not hang the page.
        options.setdefault("socket_connect_timeout", timeout_s)
        options.setdefault("socket_timeout", timeout_s)
    conn = Connection(broker_url, transport_options=options, connect_timeout=timeout_s)
    transport = str(conn.transport_cls)
    if transport == "filesystem":  # no host to show: the folder the messages lie in
        shown = f"filesystem://{options.get('data_folder_in', '')}"
    else:
        shown = conn.as_uri()  # the password masked
    report = QueueDepths(broker=shown, transport=transport, available=False)
    try:
        conn.ensure_connection(max_retries=0)  # one attempt, no retry loop
        for queue in queues:
            report.depths[queue] = _depth(conn, queue)
        report.available = True
    except Exception as exc:  # noqa: BLE001 - any broker failure is reported, not raised
        logger.warning("queue depth: broker %s unavailable: %s", report.broker, exc)
        report.error = f"{type(exc).__name__}: {exc}"
        report.depths = {}
    finally:
        conn.release()
    return report


def _depth(conn: Connection, queue: str) -> int:
    # A channel each: on RabbitMQ a passive declare of a missing queue closes its channel.
    channel = conn.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except conn.channel_errors:
        return 0  # the broker does not know the queue: nothing waits in it
    finally:
        try:
            channel.close()
        except conn.connection_errors + conn.channel_errors:
            pass
