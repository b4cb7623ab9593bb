"""Writes for ads: training runs (create, execute, cancel) and adapters (promote, retire).

    run = training_run_create(adapter_name="retail-v1", dataset="demo", steps=200)
    # queued; a gpu worker runs training_run_execute(run_id=run.id)
    training_run_cancel(run=run)           # stops at the next step
    adapter_promote(adapter=run.adapter)   # active for its scope; the previous one retired

A run trains into `<data dir>/adapters/<adapter name>/`: checkpoints while it trains (a
retried task resumes from the newest), the PEFT adapter at the end.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ads.datasets import (
    DEMO_CSV,
    CreativeRecord,
    Dataset,
    DatasetError,
    Row,
    dataset_from_csv,
    dataset_from_rows,
    rows_from_creatives,
    rows_to_csv,
)
from ads.models import Adapter, AdCreative, Advertiser, TrainingRun
from ads.prompts import product_text
from ml.lora import LoraSettings, TrainConfig, TrainProgress, train

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


class TrainingError(ValueError):
    """A run that cannot start as asked: says which field and why."""


def adapters_dir() -> Path:
    return Path(settings.DATA_DIR) / "adapters"


def dataset_for(source: str, *, advertiser: Advertiser | None = None) -> Dataset:
    """`demo` (the set shipped with Plaza), `creatives` (approved creatives weighted by
    CTR: the advertiser's, or everyone's for a shared adapter) or a CSV path."""
    path = DEMO_CSV if source == "demo" else Path(source).expanduser()
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
    return rows_from_creatives(_approved_creatives(advertiser))


def _approved_creatives(advertiser: Advertiser | None) -> list[CreativeRecord]:
    approved = AdCreative.objects.filter(status=AdCreative.Status.APPROVED).select_related(
        "campaign__advertiser"
    )
    if advertiser is not None:
        approved = approved.filter(campaign__advertiser=advertiser)
    return [
        CreativeRecord(
            desc=product_text(product=c.campaign.product, description=c.campaign.description),
            headline=c.headline,
            industry=c.campaign.advertiser.industry,
            impressions=c.impressions,
            clicks=c.clicks,
        )
        for c in approved
    ]


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
        cache_dir=str(Path(settings.DATA_DIR) / "models"),
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
        status__in=TrainingRun.FINISHED
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


class _ProgressWriter:
    """Writes a run's progress to its row: loss every step in memory, the row at most every
    PROGRESS_SAVE_EVERY_S; reads the cancel flag at each step."""

    def __init__(self, run: TrainingRun, echo=None):
        self.run = run
        self.echo = echo
        self.saved_at = 0.0

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
        now = time.monotonic()
        due = now - self.saved_at >= PROGRESS_SAVE_EVERY_S or progress.step == progress.steps
        if checkpointed or due:
            self.saved_at = now
            run.save(
                update_fields=["step", "loss_history", "checkpoint_step", "results", "updated_at"]
            )

    def should_stop(self) -> bool:
        return TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()


def training_run_execute(
    *, run_id: int, on_progress: Callable[[TrainProgress], None] | None = None
) -> TrainingRun:
    """Train (or resume) one run; idempotent: a finished run is left as it is.

    Raises nothing for a training failure: the run is marked failed with the error.
    `on_progress` sees every step too (the command prints it)."""
    run = TrainingRun.objects.select_related("parent").get(pk=run_id)
    if run.finished:
        return run
    if run.cancel_requested:
        return _finish(run, TrainingRun.Status.CANCELLED)
    TrainingRun.objects.filter(pk=run.pk).update(attempts=F("attempts") + 1)
    run.refresh_from_db()
    run.status = TrainingRun.Status.RUNNING
    run.started_at = run.started_at or timezone.now()
    # Resuming: the history past the last checkpoint is trained again, so it goes.
    run.loss_history = [p for p in run.loss_history if p[0] <= run.checkpoint_step]
    run.save(update_fields=["status", "started_at", "loss_history", "updated_at"])
    try:
        dataset = dataset_for(run.dataset)
        if dataset.snapshot_hash != run.dataset_hash:
            raise TrainingError(
                f"dataset: {run.dataset} changed since the run was created; start a new run"
            )
        config, lora = _configs(run)
        writer = _ProgressWriter(run, on_progress)
        output_dir = adapters_dir() / run.adapter_name
        result = train(
            config,
            lora,
            dataset.train_examples(),
            dataset.eval_examples(),
            output_dir,
            on_progress=writer,
            should_stop=writer.should_stop,
        )
    except Exception as exc:  # noqa: BLE001 - the run records any failure
        logger.exception("training run %s failed", run.pk)
        run.error = f"{type(exc).__name__}: {exc}"
        return _finish(run, TrainingRun.Status.FAILED)
    run.resumed_from_step = result.resumed_from_step or 0
    run.loss_history = [[step, round(loss, 5)] for step, loss in result.loss_history]
    run.results = run.results | {
        key: value
        for key, value in asdict(result).items()
        if key not in ("loss_history", "adapter_dir")
    }
    if result.cancelled:
        run.checkpoint_step = result.steps
        return _finish(run, TrainingRun.Status.CANCELLED)
    with transaction.atomic():
        run.adapter = Adapter.objects.create(
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
        return _finish(run, TrainingRun.Status.SUCCEEDED)


def _finish(run: TrainingRun, status: str) -> TrainingRun:
    run.status = status
    run.finished_at = timezone.now()
    run.save()
    if status == TrainingRun.Status.SUCCEEDED:
        # The checkpoints served their purpose; the adapter folder stays.
        shutil.rmtree(adapters_dir() / run.adapter_name / "checkpoints", ignore_errors=True)
    return run


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run ends now; a running one stops at its next step (checkpoint kept)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.finished:
            return run
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested", "updated_at"])
        if run.status == TrainingRun.Status.QUEUED:
            return _finish(run, TrainingRun.Status.CANCELLED)
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
