"""Training runs with the real small model: the command trains and records a candidate
adapter in PEFT format, the evaluation command compares it with the base, cancel stops a
run at its next step, and promoting an adapter retires the one it replaces."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ads.models import Adapter, TrainingRun
from ads.services import training as services
from tests.ads.conftest import SMALL_MODEL, TINY

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _run_command(name: str, *args: str) -> dict:
    out = StringIO()
    call_command(name, *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_train_adapter_trains_saves_and_records_a_candidate(data_dir):
    """--json's last line has exactly the promised keys; the adapter folder is standard
    PEFT (adapter_config.json + safetensors), the row is a candidate with its metrics,
    and evaluate_adapter reports base and adapter losses on the same examples."""
    line = _run_command(
        "train_adapter",
        "--dataset",
        "demo",
        "--name",
        "demo-tiny",
        "--base",
        SMALL_MODEL,
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--max-length",
        "48",
        "--checkpoint-every",
        "2",
    )
    assert set(line) == {"adapter", "steps", "seconds", "base_eval_loss", "eval_loss", "path"}
    assert line["adapter"] == "demo-tiny" and line["steps"] == 3 and line["seconds"] > 0
    folder = Path(line["path"])
    assert (folder / "adapter_config.json").is_file()
    assert (folder / "adapter_model.safetensors").is_file()
    assert json.loads((folder / "adapter_config.json").read_text())["peft_type"] == "LORA"
    adapter = Adapter.objects.get(name="demo-tiny")
    assert adapter.status == "candidate" and adapter.base_model == SMALL_MODEL
    assert adapter.metrics["eval_loss"] == line["eval_loss"] and adapter.size_bytes > 0
    run = adapter.training_run
    assert run.status == "succeeded" and run.step == 3 and len(run.loss_history) == 3
    assert not (folder.parent / "checkpoints").exists()  # removed once the adapter is saved

    evaluated = _run_command(
        "evaluate_adapter",
        "--adapter",
        "demo-tiny",
        "--dataset",
        "demo",
        "--limit",
        "6",
        "--max-length",
        "48",
    )
    assert set(evaluated) == {"adapter", "base_eval_loss", "eval_loss", "n"}
    assert evaluated["n"] == 6 and evaluated["eval_loss"] > 0 and evaluated["base_eval_loss"] > 0


def test_commands_refuse_bad_input_with_the_field_named(data_dir, tmp_path):
    with pytest.raises(CommandError, match="dataset: .*absent.csv: no such file"):
        call_command("train_adapter", "--dataset", str(tmp_path / "absent.csv"), "--name", "x")
    with pytest.raises(CommandError, match="name: 'not a slug!' is not a slug"):
        call_command("train_adapter", "--dataset", "demo", "--name", "not a slug!")
    with pytest.raises(CommandError, match="--adapter nope: no such adapter"):
        call_command("evaluate_adapter", "--adapter", "nope", "--dataset", "demo")
    assert not TrainingRun.objects.exists()


def test_cancel_stops_a_running_run_at_its_next_step_with_a_checkpoint(data_dir):
    """Cancelling while step 2 reports: the run ends cancelled at step 2, its checkpoint
    on disk, and no adapter is recorded."""
    run = services.training_run_create(
        adapter_name="to-cancel",
        dataset="demo",
        steps=6,
        base_model=SMALL_MODEL,
        parameters=TINY,
        enqueue=False,
    )

    def cancel_at_two(progress):
        if progress.step == 2:
            services.training_run_cancel(run=run)

    run = services.training_run_execute(run_id=run.pk, on_progress=cancel_at_two)
    assert run.status == "cancelled" and run.step == 2 and run.checkpoint_step == 2
    assert run.adapter is None and not Adapter.objects.exclude(name="plaza-default").exists()
    assert list((data_dir / "adapters" / "to-cancel" / "checkpoints").iterdir())
    assert services.training_run_execute(run_id=run.pk).status == "cancelled"  # idempotent


def test_a_queued_run_cancels_at_once_and_never_trains(data_dir):
    run = services.training_run_create(
        adapter_name="queued", dataset="demo", steps=3, base_model=SMALL_MODEL, enqueue=False
    )
    assert services.training_run_cancel(run=run).status == "cancelled"
    assert services.training_run_execute(run_id=run.pk).attempts == 0


def test_promoting_an_adapter_retires_the_active_one_of_its_scope(advertisers):
    """One active adapter per scope: promoting another retires it; another advertiser's
    active adapter is untouched."""
    acme, globex = advertisers["acme"], advertisers["globex"]
    first, second, theirs = (
        Adapter.objects.create(name=name, base_model=SMALL_MODEL, scope="advertiser", advertiser=a)
        for name, a in (("acme-1", acme), ("acme-2", acme), ("globex-1", globex))
    )
    services.adapter_promote(adapter=first)
    services.adapter_promote(adapter=theirs)
    services.adapter_promote(adapter=second)
    statuses = dict(Adapter.objects.exclude(name="plaza-default").values_list("name", "status"))
    assert statuses == {"acme-1": "retired", "acme-2": "active", "globex-1": "active"}


def test_a_silent_running_run_is_failed_by_the_sweep_and_a_fresh_one_is_not(db):
    """A run whose worker died stops saying running once TrainingRun.STALE_AFTER passes
    without a write, and says why; a run that wrote recently is left alone; a failed run
    delivered again is not trained. The sweep is on beat, on the default queue."""
    from ads.tasks import training_runs_fail_stale as training_runs_fail_stale_task
    from config.celery import app

    stuck, fresh = (
        TrainingRun.objects.create(
            adapter_name=name, base_model=SMALL_MODEL, dataset="demo", steps=3, status="running"
        )
        for name in ("stuck", "fresh")
    )
    assert services.training_runs_fail_stale() == 0
    TrainingRun.objects.filter(pk=stuck.pk).update(
        updated_at=timezone.now() - TrainingRun.STALE_AFTER - timedelta(seconds=1)
    )
    assert services.training_runs_fail_stale() == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == "failed" and stuck.error == TrainingRun.STALE_ERROR
    assert "worker stopped" in stuck.error and stuck.finished_at
    assert fresh.status == "running" and not fresh.error
    again = services.training_run_execute(run_id=stuck.pk)  # the broker hands it back later
    assert again.status == "failed" and again.attempts == 0

    assert training_runs_fail_stale_task.name == "ads.tasks.training_runs_fail_stale"
    assert app.amqp.router.route({}, training_runs_fail_stale_task.name)["queue"].name == "default"
    assert "ads.tasks.training_runs_fail_stale" in {
        entry["task"] for entry in app.conf.beat_schedule.values()
    }
