"""GPU against CPU on one host: vector search and encoding throughput.

    .venv/bin/python bench/gpu.py [--n 1000000] [--texts 20000]

Needs faiss built for GPUs (the `gpu` extra) and CUDA torch; prints what it finds and
skips what it cannot run. Measures, in one process:
  - FAISS Flat and IVF search, batch queries/s and single-query p50, CPU vs GPU;
  - Plaza's SegmentedIndex with sealed segments on the GPU vs the CPU (use_gpu);
  - sentence encoding posts/s with ml.embeddings on CUDA vs CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed_search(search, queries: np.ndarray) -> dict:
    search(queries[:10])  # warm-up
    start = time.perf_counter()
    search(queries)
    qps = len(queries) / (time.perf_counter() - start)
    singles = []
    for q in queries[:200]:
        start = time.perf_counter()
        search(q[None])
        singles.append((time.perf_counter() - start) * 1000)
    return {"qps": qps, "p50_ms": float(np.median(singles))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--texts", type=int, default=20_000)
    args = parser.parse_args()
    import faiss
    import torch

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    cuda = torch.cuda.is_available()
    print(f"faiss {faiss.__version__}, GPUs visible to faiss: {gpus}; torch CUDA: {cuda}")
    results: dict = {}
    base, queries = unit(args.n, args.dim, 1), unit(2000, args.dim, 2)

    for factory, nprobe in (("Flat", None), ("IVF4096,Flat", 64)):
        cpu = faiss.index_factory(args.dim, factory, faiss.METRIC_INNER_PRODUCT)
        if not cpu.is_trained:
            cpu.train(base[: 64 * 4096])
        cpu.add(base)
        if nprobe:
            cpu.nprobe = nprobe
        results[f"{factory} cpu"] = timed_search(lambda q, i=cpu: i.search(q, 10), queries)
        if gpus:
            gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu)
            if nprobe:
                faiss.GpuParameterSpace().set_index_parameter(gpu, "nprobe", nprobe)
            results[f"{factory} gpu"] = timed_search(lambda q, i=gpu: i.search(q, 10), queries)

    from ml.index import IndexConfig, SegmentedIndex

    for use_gpu in (False, True) if gpus else (False,):
        with tempfile.TemporaryDirectory() as tmp:
            config = IndexConfig(
                factory="IVF4096,Flat", seal_size=args.n, nprobe=64, use_gpu=use_gpu
            )
            index = SegmentedIndex.open(tmp, dim=args.dim, config=config)
            index.upsert(np.arange(args.n), base, np.arange(args.n))
            index.commit()
            label = f"plaza IVF4096 {'gpu' if use_gpu else 'cpu'}"
            results[label] = timed_search(lambda q, i=index: i.search(q, 10), queries)

    from ml.embeddings import EncoderConfig, get_encoder

    texts = [
        f"post number {i}: the weather in city {i % 97} is {'sunny' if i % 3 else 'rainy'} today"
        for i in range(args.texts)
    ]
    for device in ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",):
        encoder = get_encoder(EncoderConfig(device=device))
        encoder.encode(texts[:256])
        start = time.perf_counter()
        encoder.encode(texts)
        results[f"encode {device}"] = {"posts_per_s": len(texts) / (time.perf_counter() - start)}

    for name, row in results.items():
        print(f"{name:<24} " + "  ".join(f"{k}={v:,.2f}" for k, v in row.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
