"""A LoRA run's data: examples checked, tokenised with completion-only labels, batched,
and drawn in a resumable order.

    from ml.lora.data import collate, example_order, tokenize_example

    ids, labels = tokenize_example(tokenizer, example, max_length=128)
    batch = collate([(ids, labels), ...], pad_id)      # input_ids, attention_mask, labels
    order = example_order(len(encoded), seed=0, start=examples_seen)
    next(order)                                         # an index into encoded

Each example is prompt + completion + EOS, cut to ``max_length`` tokens (the prompt loses
its beginning first, so the completion survives); labels are ``IGNORE_INDEX`` on prompt
and padding, so the loss counts completion tokens only. The order is an endless stream of
per-epoch shuffles seeded by the run's seed: a resumed run continues it where it stopped.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ml.lora.config import Example

if TYPE_CHECKING:
    import torch

__all__ = ["IGNORE_INDEX", "check_examples", "collate", "example_order", "tokenize_example"]

IGNORE_INDEX = -100  # the label cross-entropy skips: prompt and padding tokens


def check_examples(examples: Any, name: str) -> list[Example]:
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
