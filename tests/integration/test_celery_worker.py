"""A real Celery worker process, against Redis and against the embedded broker.

The worker is started as `celery -A config worker` in its own process, with the test
database and the broker under test; tasks travel through the broker to it and write
to the database, as in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db import connection, transaction

from config.celery import QUEUES
from config.settings import celery_broker_options
from ops.models import WorkerHeartbeat
from ops.services import worker_heartbeat_request

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("PLAZA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def database_url() -> str:
    """The test database, as a URL a worker process can open."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False


class Worker:
    """`celery -A config worker` on every queue, in a child process."""

    def __init__(self, broker_url: str, data_dir: Path):
        self.broker_url = broker_url
        self.data_dir = data_dir
        self.log = data_dir / "worker.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "PLAZA_DATA_DIR": str(data_dir),
        }
        env.pop("CELERY_RESULT_BACKEND", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                ",".join(QUEUES),
                "-c",
                "1",
                "-n",
                f"test-{os.getpid()}@%h",
                "-l",
                "info",
            ],
            cwd=REPO,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def client(self) -> Celery:
        """A producer with the same broker and result backend as the worker."""
        app = Celery("plaza-test", broker=self.broker_url, set_as_current=False)
        app.conf.update(celery_broker_options(self.broker_url, self.data_dir))
        return app

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text()[-4000:]


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


def wait_for(predicate, timeout: float, worker: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s\n--- worker log ---\n{worker.output()}")
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited\n--- worker log ---\n{worker.output()}")
        time.sleep(0.2)


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
