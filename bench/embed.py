"""Embedding throughput: Plaza's encoder against a plain sentence-transformers loop, same run.

    .venv/bin/python bench/embed.py [--file PATH] [--limit N] [--precision auto|fp32|bf16]
                                    [--batch-size N] [--rounds R]

Reads the first N posts (default 4,000) of es-news-tweets (../shared/data/posts/, or
PLAZA_SHARED_DATA, or --file) and encodes them in one process with:
  - baseline: SentenceTransformer(path, device=...).encode(texts, batch_size=32), fp32;
  - ours: ml.embeddings.get_encoder(EncoderConfig(precision=..., batch_size=...)).encode(texts).
Both run on the device ours picks, after a warm-up; with --rounds R > 1 they alternate and
the best pass of each counts. Prints posts/s, the ratio, and the min/mean cosine between
the two outputs, then one JSON line. bf16 on a CPU without native bf16 is ~10x slower than
fp32: pass a small --limit there.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads from a hub

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED_DATA = Path(os.environ.get("PLAZA_SHARED_DATA") or REPO.parent / "shared" / "data")
DEFAULT_FILE = SHARED_DATA / "posts" / "es-news-tweets.jsonl.gz"
WARMUP_POSTS = 64


def read_posts(path: Path, limit: int) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in itertools.islice(lines, limit)]


def timed(encode, texts: list[str]):
    start = time.perf_counter()
    vectors = encode(texts)
    return vectors, len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--limit", type=int, default=4000, help="posts to encode (default 4000)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--batch-size", type=int, default=32, help="ours (baseline: 32)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating passes, best counts")
    args = parser.parse_args()
    if not args.file.is_file():
        raise SystemExit(f"{args.file}: not found (pass --file, or set PLAZA_SHARED_DATA)")

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from ml.embeddings import EncoderConfig, cpu_has_fast_bf16, get_encoder
    from ml.registry import resolve_model

    texts = read_posts(args.file, args.limit)
    config = EncoderConfig(precision=args.precision, batch_size=args.batch_size)
    ours = get_encoder(config)  # sets torch's CPU threads, so load it first
    baseline_model = SentenceTransformer(
        resolve_model(config.model).target, device=ours.device, local_files_only=True
    )

    def baseline(batch: list[str]) -> np.ndarray:
        return baseline_model.encode(batch, batch_size=32, convert_to_numpy=True)

    baseline(texts[:WARMUP_POSTS])
    ours.encode(texts[:WARMUP_POSTS])
    baseline_rate = ours_rate = 0.0
    for _ in range(max(1, args.rounds)):
        baseline_vectors, rate = timed(baseline, texts)
        baseline_rate = max(baseline_rate, rate)
        ours_vectors, rate = timed(ours.encode, texts)
        ours_rate = max(ours_rate, rate)

    baseline_vectors = baseline_vectors.astype(np.float64)
    baseline_vectors /= np.linalg.norm(baseline_vectors, axis=1, keepdims=True)
    cosine = np.einsum("nd,nd->n", ours_vectors.astype(np.float64), baseline_vectors)

    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    isa = torch.backends.cpu.get_cpu_capability()
    result = {
        "file": args.file.name,
        "posts": len(texts),
        "device": ours.device,
        "cpu": capabilities.get("cpu_name", "?"),
        "cpu_isa": isa,
        "cpu_native_bf16": cpu_has_fast_bf16(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "precision_asked": args.precision,
        "precision": ours.precision,
        "batch_size": args.batch_size,
        "rounds": max(1, args.rounds),
        "baseline_posts_s": round(baseline_rate, 1),
        "ours_posts_s": round(ours_rate, 1),
        "ratio": round(ours_rate / baseline_rate, 2),
        "cosine_min": round(float(cosine.min()), 5),
        "cosine_mean": round(float(cosine.mean()), 5),
    }

    print(
        f"file: {result['file']}   posts: {result['posts']}   device: {result['device']} "
        f"({result['cpu']}, {isa}, native bf16: {result['cpu_native_bf16']}, "
        f"{result['threads']} threads)   torch {result['torch']}"
    )
    header = f"{'path':<52}{'posts/s':>9}{'vs baseline':>13}"
    rows = [
        ("baseline: SentenceTransformer.encode, fp32, batch 32", baseline_rate),
        (
            f"ours: Encoder, precision={args.precision}->{ours.precision}, batch {args.batch_size}",
            ours_rate,
        ),
    ]
    print(header)
    print("-" * len(header))
    for name, rate in rows:
        print(f"{name:<52}{rate:>9.1f}{rate / baseline_rate:>12.2f}x")
    print(f"cosine(ours, baseline): min {cosine.min():.5f}   mean {cosine.mean():.5f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
