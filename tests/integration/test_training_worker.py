"""Training on a real Celery worker (gpu queue) with the real small model: a run started
through the service trains on the worker; when the worker's process is killed mid-run
(SIGKILL, as the OOM killer would), the task is handed back, and the retried task resumes
from the last checkpoint and finishes the run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid

import pytest

from ads.models import TrainingRun
from ads.services import training as services
from tests.ads.conftest import SMALL_MODEL, TINY
from tests.integration.workers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _pool_children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in found.stdout.split()]


def test_a_killed_training_process_resumes_from_its_checkpoint(configured_worker, request):
    """Kill the process training the run after its step-2 checkpoint: the worker hands the
    task back (acks_late, reject_on_worker_lost), a new process resumes at step >= 2, the
    run succeeds with every step done and an adapter recorded."""
    name = f"resumed-{uuid.uuid4().hex[:8]}"  # the worker's data dir outlives this test
    request.addfinalizer(lambda: shutil.rmtree(services.adapters_dir() / name, True))
    run = services.training_run_create(
        adapter_name=name, dataset="demo", steps=8, base_model=SMALL_MODEL, parameters=TINY
    )
    worker = configured_worker
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).checkpoint_step >= 2, 300, worker)
    run.refresh_from_db()
    assert run.status == "running" and run.step < run.steps, "finished before the kill"
    for child in _pool_children(worker.process.pid):
        os.kill(child, signal.SIGKILL)
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).finished, 300, worker)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.attempts == 2 and run.resumed_from_step >= 2
    assert run.step == 8 and [step for step, _ in run.loss_history] == list(range(1, 9))
    assert run.adapter is not None and run.adapter.status == "candidate"
