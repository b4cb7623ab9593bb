"""The Celery wiring: each task routes to the queue it names where it is defined, and
beat's intervals come from the validated settings."""

from __future__ import annotations

import importlib

import pytest

from config.celery import QUEUES, app

TASK_MODULES = ("search.tasks", "ads.tasks", "ops.tasks")


def plaza_tasks() -> dict:
    for module in TASK_MODULES:
        importlib.import_module(module)
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_routes_to_the_queue_it_declares():
    """No task is routed by its name: each says `queue_name=` in its decorator, one of the
    queues the workers serve, and the router sends it there."""
    tasks = plaza_tasks()
    assert len(tasks) >= 13
    undeclared = sorted(name for name, task in tasks.items() if not getattr(task, "queue_name", ""))
    assert undeclared == []
    for name, task in tasks.items():
        assert task.queue_name in QUEUES, name
        assert app.amqp.router.route({}, name)["queue"].name == task.queue_name, name
    assert app.conf.task_routes == (app.conf.task_routes[0],)  # the router alone, no globs


@pytest.mark.parametrize(
    ("name", "queue"),
    [
        ("search.tasks.index_flush", "index"),
        ("search.tasks.reconcile", "index"),
        ("search.tasks.generation_build", "default"),
        ("search.tasks.generation_build_chunk", "build"),
        ("search.tasks.generation_build_finish", "index"),
        ("search.tasks.answer_run", "gpu"),
        ("ads.tasks.draft_job_execute", "gpu"),
        ("ads.tasks.training_run_execute", "gpu"),
        ("ads.tasks.draft_jobs_fail_stale", "default"),
    ],
)
def test_the_queues_are_those_of_the_design(name, queue):
    plaza_tasks()
    assert app.amqp.router.route({}, name)["queue"].name == queue


def test_an_explicit_queue_wins_over_the_declared_one():
    """Beat's heartbeats go to each queue in turn, whatever the task declares."""
    plaza_tasks()
    assert (
        app.amqp.router.route({"queue": "gpu"}, "ops.tasks.worker_heartbeat")["queue"].name == "gpu"
    )
    beats = {
        entry["options"]["queue"]
        for key, entry in app.conf.beat_schedule.items()
        if key.startswith("worker-heartbeat-")
    }
    assert beats == set(QUEUES)


def test_every_beat_entry_names_a_task_and_reconcile_reads_its_setting(settings):
    tasks = plaza_tasks()
    assert {entry["task"] for entry in app.conf.beat_schedule.values()} <= set(tasks)
    reconcile = app.conf.beat_schedule["index-reconcile"]
    assert reconcile["schedule"] == float(settings.PLAZA_RECONCILE_INTERVAL_S)
    assert reconcile["options"]["expires"] < reconcile["schedule"]


@pytest.mark.integration
def test_a_task_sent_by_name_before_its_module_is_imported_still_goes_to_its_queue():
    """A fresh process (the web, beat) that sends a task by its name alone: the router
    imports the apps' tasks modules first, so the task's own queue is found."""
    import subprocess
    import sys

    probe = (
        "import os, sys, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'\n"
        "django.setup()\n"
        "from config.celery import app\n"
        "assert 'ads.tasks' not in sys.modules\n"
        "print(app.amqp.router.route({}, 'ads.tasks.draft_job_execute')['queue'].name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "gpu"
