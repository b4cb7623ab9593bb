"""Training: LoRA training runs (create, execute, cancel, the stale sweep) and the adapters
they make (promote, retire).

    run = training_run_create(adapter_name="retail-v1", dataset="demo", steps=200)
    # queued; a gpu worker runs training_run_execute(run_id=run.id)
    training_run_cancel(run=run)           # stops at the next step
    adapter_promote(adapter=run.adapter)   # active for its scope; the previous one retired
    training_runs_fail_stale()             # beat: fails the runs a dead worker left running

A run trains into `<data dir>/adapters/<adapter name>/`: checkpoints while it trains (a
retried task resumes from the newest), the PEFT adapter at the end.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from ads.datasets import (
    DEFAULT_SET_CSV,
    DEMO_CSV,
    Dataset,
    DatasetError,
    Row,
    dataset_from_csv,
    dataset_from_rows,
    rows_from_creatives,
    rows_to_csv,
)
from ads.models import Adapter, Advertiser, TrainingRun
from ads.selectors import approved_creative_records
from ml.lora import LoraSettings, TrainConfig, TrainProgress, train
from ops.jobs import ProgressWriter, job_finish, job_should_stop, job_start, jobs_fail_stale

logger = logging.getLogger(__name__)

# Parameters a run may set, with their defaults (ml.lora.TrainConfig / LoraSettings).
TRAIN_PARAMETERS = (
    "batch_size",
    "grad_accum",
    "learning_rate",
    "warmup_steps",
    "max_length",
    "seed",
    "checkpoint_every",
    "precision",
)
LORA_PARAMETERS = ("r", "alpha", "dropout", "target_modules")
PROGRESS_SAVE_EVERY_S = 1.0  # the row is written at most this often (and at checkpoints)
PROGRESS_FIELDS = ("step", "loss_history", "checkpoint_step", "results")  # what it writes


class TrainingError(ValueError):
    """A run that cannot start as asked: says which field and why."""


def adapters_dir() -> Path:
    return Path(settings.DATA_DIR) / "adapters"


def dataset_for(source: str, *, advertiser: Advertiser | None = None) -> Dataset:
    """`demo` (the small headline set shipped with Plaza), `default` (Plaza's own briefs
    with headlines and posts, the default adapter's), `creatives` (approved creatives weighted by
    CTR: the advertiser's, or everyone's for a shared adapter) or a CSV path."""
    shipped = {"demo": DEMO_CSV, "default": DEFAULT_SET_CSV}
    path = shipped.get(source) or Path(source).expanduser()
    try:
        if source == "creatives":
            dataset = dataset_from_rows(creative_training_rows(advertiser=advertiser))
        else:
            dataset = dataset_from_csv(path)
    except DatasetError as exc:
        raise TrainingError(f"dataset: {exc}") from None
    if not dataset.train or not dataset.eval:
        raise TrainingError(
            f"dataset: {path} gives {len(dataset.train)} training and {len(dataset.eval)} "
            f"evaluation examples after cleaning; both must be non-empty"
        )
    return dataset


def creative_training_rows(*, advertiser: Advertiser | None) -> list[Row]:
    """Approved creatives (the advertiser's, or everyone's) as training rows weighted by
    their CTR."""
    return rows_from_creatives(approved_creative_records(advertiser=advertiser))


def _creatives_snapshot(advertiser: Advertiser | None) -> Path:
    text = rows_to_csv(creative_training_rows(advertiser=advertiser))
    folder = Path(settings.DATA_DIR) / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"creatives-{hashlib.sha256(text.encode()).hexdigest()[:16]}.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _configs(run: TrainingRun) -> tuple[TrainConfig, LoraSettings]:
    params = run.parameters or {}
    config = TrainConfig(
        base_model=run.base_model,
        steps=run.steps,
        cache_dir=str(settings.PLAZA_MODEL_CACHE),
        device=settings.PLAZA_DEVICE,
        warmup_steps=min(params.get("warmup_steps", 10), run.steps),
        **{k: params[k] for k in TRAIN_PARAMETERS if k in params and k != "warmup_steps"},
    )
    lora = LoraSettings(**{k: params[k] for k in LORA_PARAMETERS if k in params})
    return config, lora


@transaction.atomic
def training_run_create(
    *,
    adapter_name: str,
    dataset: str,
    steps: int,
    base_model: str | None = None,
    scope: str = Adapter.Scope.GLOBAL,
    industry: str = "",
    advertiser: Advertiser | None = None,
    parent: Adapter | None = None,
    parameters: dict | None = None,
    user=None,
    enqueue: bool = True,
) -> TrainingRun:
    """A queued run, checked before anything is sent: the name is free, the dataset reads,
    the parameters make a valid training config. Sent to the gpu queue on commit."""
    try:
        validate_slug(adapter_name)
    except ValidationError:
        raise TrainingError(
            f"name: {adapter_name!r} is not a slug (letters, digits, - and _ only)"
        ) from None
    if Adapter.objects.filter(name=adapter_name).exists():
        raise TrainingError(f"name: an adapter named {adapter_name!r} exists already")
    busy = TrainingRun.objects.filter(adapter_name=adapter_name).exclude(
        status__in=TrainingRun.finished_statuses()
    )
    if busy.exists():
        raise TrainingError(f"name: a run for {adapter_name!r} is already queued or running")
    run = TrainingRun(
        adapter_name=adapter_name,
        base_model=base_model or settings.PLAZA_AD_BASE_MODEL,
        scope=scope,
        industry=industry,
        advertiser=advertiser,
        parent=parent,
        dataset=dataset,
        parameters=dict(parameters or {}),
        steps=steps,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    try:
        _configs(run)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"parameters: {exc}") from None
    if dataset == "creatives":
        # A snapshot on disk: performance keeps changing, a resumed run must not see it.
        run.dataset = str(_creatives_snapshot(advertiser))
    prepared = dataset_for(run.dataset)
    run.dataset_hash = prepared.snapshot_hash
    run.train_examples = len(prepared.train_examples())
    run.eval_examples = len(prepared.eval)
    run.save()
    if enqueue:
        transaction.on_commit(lambda: training_run_enqueue(run_id=run.pk))
    return run


def training_run_enqueue(*, run_id: int) -> None:
    from ads.tasks import training_run_execute as training_run_execute_task

    training_run_execute_task.apply_async((run_id,))


class _RunProgress:
    """A run's progress as it trains: loss every step in memory, the row written through
    a ProgressWriter at most every PROGRESS_SAVE_EVERY_S, and at once at a checkpoint and
    at the last step."""

    def __init__(self, run: TrainingRun, echo: Callable[[TrainProgress], None] | None = None):
        self.run = run
        self.echo = echo
        self.write = ProgressWriter(run, every_s=PROGRESS_SAVE_EVERY_S)

    def __call__(self, progress: TrainProgress) -> None:
        run = self.run
        run.step = progress.step
        run.loss_history = [*run.loss_history, [progress.step, round(progress.loss, 5)]]
        # A checkpoint is written just after its step reports: the row names only the
        # newest one complete on disk, the one a retried task resumes from.
        checkpointed = progress.checkpoint_step != run.checkpoint_step
        run.checkpoint_step = progress.checkpoint_step
        run.results = run.results | {"tokens_per_s": round(progress.tokens_per_s, 1)}
        if progress.eval_loss is not None:
            history = run.results.get("eval_history", [])
            run.results["eval_history"] = [*history, [progress.step, progress.eval_loss]]
        if self.echo is not None:
            self.echo(progress)
        self.write(
            force=checkpointed or progress.step == progress.steps,
            **{name: getattr(run, name) for name in PROGRESS_FIELDS},
        )


def training_run_execute(
    *, run_id: int, on_progress: Callable[[TrainProgress], None] | None = None
) -> TrainingRun:
    """Train (or resume) one run; idempotent: a finished run is left as it is, and one the
    stale sweep failed while it trained stops at its next step and stays failed.

    Raises nothing for a training failure: the run is marked failed with the error.
    `on_progress` sees every step too (the command prints it)."""
    run = TrainingRun.objects.select_related("parent").get(pk=run_id)
    if run.finished:
        return run
    if run.cancel_requested:
        return _run_finish(run, TrainingRun.Status.CANCELLED)
    first_started_at = run.started_at
    # Resuming: the history past the last checkpoint is trained again, so it goes.
    kept_history = [p for p in run.loss_history if p[0] <= run.checkpoint_step]
    run = job_start(run, loss_history=kept_history)
    if first_started_at is not None:  # a resumed run keeps the time it first started
        TrainingRun.objects.filter(pk=run.pk).update(started_at=first_started_at)
        run.started_at = first_started_at
    try:
        dataset = dataset_for(run.dataset)
        if dataset.snapshot_hash != run.dataset_hash:
            raise TrainingError(
                f"dataset: {run.dataset} changed since the run was created; start a new run"
            )
        config, lora = _configs(run)
        output_dir = adapters_dir() / run.adapter_name
        result = train(
            config,
            lora,
            dataset.train_examples(),
            dataset.eval_examples(),
            output_dir,
            on_progress=_RunProgress(run, on_progress),
            should_stop=lambda: job_should_stop(run),
        )
    except Exception as exc:  # noqa: BLE001 - the run records any failure
        logger.exception("training run %s failed", run.pk)
        error = f"{type(exc).__name__}: {exc}"
        # The progress since the last throttled write is saved with the failure.
        progress = {name: getattr(run, name) for name in PROGRESS_FIELDS}
        return _run_finish(run, TrainingRun.Status.FAILED, error=error, **progress)
    results = run.results | {
        key: value
        for key, value in asdict(result).items()
        if key not in ("loss_history", "adapter_dir")
    }
    trained = {
        "step": run.step,
        "resumed_from_step": result.resumed_from_step or 0,
        "loss_history": [[step, round(loss, 5)] for step, loss in result.loss_history],
        "results": results,
    }
    if result.cancelled:
        run.refresh_from_db(fields=["status", "error", "finished_at"])
        if run.finished:  # the stale sweep ended it while it trained: it stays so
            return run
        return _run_finish(
            run, TrainingRun.Status.CANCELLED, checkpoint_step=result.steps, **trained
        )
    with transaction.atomic():
        adapter = Adapter.objects.create(
            name=run.adapter_name,
            base_model=run.base_model,
            scope=run.scope,
            industry=run.industry,
            advertiser=run.advertiser,
            parent=run.parent,
            lora={
                "r": lora.r,
                "alpha": lora.alpha,
                "dropout": lora.dropout,
                "target_modules": list(result.target_modules),
            },
            dataset_hash=run.dataset_hash,
            dataset_size=run.train_examples,
            tasks=list(dataset.tasks),
            metrics={
                "eval_loss": result.eval_loss,
                "eval_perplexity": result.eval_perplexity,
                "base_eval_loss": result.base_eval_loss,
                "base_eval_perplexity": result.base_eval_perplexity,
                "eval_examples": run.eval_examples,
            },
            path=str(Path(result.adapter_dir).relative_to(settings.DATA_DIR)),
            size_bytes=result.adapter_bytes,
        )
        return _run_finish(run, TrainingRun.Status.SUCCEEDED, adapter=adapter, **trained)


def _run_finish(run: TrainingRun, status: str, *, error: str = "", **fields) -> TrainingRun:
    """job_finish, and a succeeded run's checkpoints removed (the adapter folder stays)."""
    run = job_finish(run, status, error=error, **fields)
    if status == TrainingRun.Status.SUCCEEDED:
        shutil.rmtree(adapters_dir() / run.adapter_name / "checkpoints", ignore_errors=True)
    return run


def training_runs_fail_stale() -> int:
    """Fail the running runs whose worker died: no write for TrainingRun.STALE_AFTER.
    Returns how many. A run failed here stays failed if its task is delivered again."""
    return jobs_fail_stale(TrainingRun)


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run ends now; a running one stops at its next step (checkpoint kept)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.finished:
            return run
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested", "updated_at"])
        if run.status == TrainingRun.Status.QUEUED:
            return _run_finish(run, TrainingRun.Status.CANCELLED)
    return run


@transaction.atomic
def adapter_promote(*, adapter: Adapter) -> Adapter:
    """Make an adapter the active one of its scope; the one it replaces is retired."""
    adapter = Adapter.objects.select_for_update().get(pk=adapter.pk)
    Adapter.objects.filter(
        status=Adapter.Status.ACTIVE,
        scope=adapter.scope,
        industry=adapter.industry,
        advertiser=adapter.advertiser,
    ).exclude(pk=adapter.pk).update(status=Adapter.Status.RETIRED)
    adapter.status = Adapter.Status.ACTIVE
    adapter.promoted_at = timezone.now()
    adapter.save(update_fields=["status", "promoted_at"])
    return adapter


def adapter_retire(*, adapter: Adapter) -> Adapter:
    adapter.status = Adapter.Status.RETIRED
    adapter.save(update_fields=["status"])
    return adapter
