"""Fixtures for the integration tests."""

from __future__ import annotations

import pytest

from config.celery import QUEUES
from tests.integration.workers import Worker


@pytest.fixture
def configured_worker(settings):
    """A worker on the broker this process's settings name (Redis in CI, else embedded)."""
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_declare(queue=queue, durable=True)
            conn.default_channel.queue_purge(queue)
    running = Worker(settings.CELERY_BROKER_URL, settings.DATA_DIR)
    yield running
    running.stop()
