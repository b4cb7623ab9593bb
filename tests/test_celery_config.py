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
