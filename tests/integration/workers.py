"""A real Celery worker in a child process, for the integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from celery import Celery
from django.db import connection

from config.celery import QUEUES
from config.settings import celery_broker_options

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
    """`celery -A config worker` on every queue, in a child process.

    With `pause_file`, a job the worker runs pauses for good after its first progress write,
    once it has written that file (tests/integration/pause.py): see `wait_for_pause`."""

    def __init__(
        self,
        broker_url: str,
        data_dir: Path,
        *,
        pause_file: Path | None = None,
        name: str = "test",
        **extra_env: str,
    ):
        self.broker_url = broker_url
        self.data_dir = data_dir
        self.log = data_dir / "worker.log"
        self.pause_file = pause_file
        if pause_file is not None:
            extra_env["PLAZA_TEST_PAUSE_FILE"] = str(pause_file)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "PLAZA_DATA_DIR": str(data_dir),
            **extra_env,
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
                f"{name}-{os.getpid()}@%h",
                "-l",
                "info",
                *(["-I", "tests.integration.pause"] if pause_file is not None else []),
            ],
            cwd=REPO,
            env=env,
            stdout=self.log.open("a"),
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

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: no cleanup runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def output(self) -> str:
        return self.log.read_text()[-4000:]

    def wait_for_pause(self, timeout: float) -> None:
        """Until the running job has written its progress and paused (see the class)."""
        assert self.pause_file is not None, "start the worker with pause_file"
        wait_for(self.pause_file.exists, timeout, self)


def wait_for(predicate, timeout: float, worker: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s\n--- worker log ---\n{worker.output()}")
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited\n--- worker log ---\n{worker.output()}")
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebServer:
    """`gunicorn -c config/gunicorn.py` (one worker process) on the test database, with a
    data folder of its own (a separate host), on a free loopback port."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.log = folder / "gunicorn.log"
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "PLAZA_DATA_DIR": str(folder),
            "PLAZA_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py"],
            cwd=REPO, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or busy starting
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not come up\n{self.log.read_text()[-4000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
