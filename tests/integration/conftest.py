"""Fixtures for the integration tests."""

from __future__ import annotations

import pytest

from config.celery import QUEUES
from tests.integration.workers import Worker


def queues_emptied() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_declare(queue=queue, durable=True)
            conn.default_channel.queue_purge(queue)


@pytest.fixture
def configured_worker(settings):
    """A worker on the broker this process's settings name (Redis in CI, else embedded)."""
    queues_emptied()
    running = Worker(settings.CELERY_BROKER_URL, settings.DATA_DIR)
    yield running
    running.stop()


@pytest.fixture
def pausing_worker(settings, tmp_path):
    """The configured worker, whose jobs pause after their first progress write (for a
    test that kills it mid-job: Worker.wait_for_pause)."""
    queues_emptied()
    running = Worker(settings.CELERY_BROKER_URL, settings.DATA_DIR, pause_file=tmp_path / "paused")
    yield running
    running.stop()
