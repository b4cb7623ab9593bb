"""Vector index benchmark: Plaza's SegmentedIndex against raw FAISS and LangChain's FAISS store.

    .venv/bin/python bench/index.py [--sizes 100000,1000000] [--factories 'HNSW32;IVF1024,Flat']
                                    [--real] [--sweep] [--queries 1000] [--latency-queries 300]

For each data set (random unit vectors of each size; with --real, all-MiniLM embeddings
of ../shared/data/posts, cached under var/bench/) and each factory string it builds:
  plaza     SegmentedIndex with that factory, one sealed segment (seal_size = N)
  faiss     the same index built with raw FAISS (index_factory + add), same search params
  langchain langchain_community's FAISS vector store (exact inner product), once per set
each in its own process, and reports build time, resident memory added by the index
(and its ratio to the raw float32 vectors), single-query p50/p99 latency, batch queries/s,
recall@10 against exact search, and the time to upsert 1,000 existing ids and make them
durable (plaza: upsert + commit; langchain: delete + add; raw HNSW cannot remove).
--sweep first prints recall and latency of raw FAISS over efSearch (HNSW32) and
nlist x nprobe (IVF), from which IndexConfig's defaults were chosen.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
K = 10


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def unit_vectors(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), np.float32)
    for start in range(0, n, 100_000):  # in chunks: float64 temporaries stay small
        x = rng.standard_normal((min(100_000, n - start), d), dtype=np.float32)
        out[start : start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_top_k(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    return flat.search(queries, k)[1]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)]))


def latencies(search_one, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        search_one(q[None, :])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


# --- one variant, run in a child process -----------------------------------------------


def run_variant(variant: str, factory: str, data_dir: Path, ef: int, nprobe: int) -> dict:
    import faiss

    queries = np.load(data_dir / "queries.npy")
    truth = np.load(data_dir / "truth.npy")
    single = queries[: int(os.environ.get("BENCH_LATENCY_QUERIES", "300"))]
    fresh = unit_vectors(1000, queries.shape[1], seed=99)
    gc.collect()
    before = rss_mb()  # the index's memory: RSS after the build, less this, less nothing else
    base = np.load(data_dir / "base.npy")
    n, d = base.shape
    ids = np.arange(n, dtype=np.int64)
    touched = np.random.default_rng(7).choice(n, 1000, replace=False).astype(np.int64)
    result: dict = {"variant": variant, "factory": factory, "n": n}

    if variant == "plaza":
        from ml.index import IndexConfig, SegmentedIndex

        path = data_dir / "plaza-index"
        shutil.rmtree(path, ignore_errors=True)
        config = IndexConfig(
            factory=factory, seal_size=n, ef_search=ef, nprobe=nprobe, use_gpu=False
        )
        start = time.perf_counter()
        index = SegmentedIndex.open(path, dim=d, config=config)
        for chunk in range(0, n, 100_000):
            index.upsert(
                ids[chunk : chunk + 100_000],
                base[chunk : chunk + 100_000],
                ids[chunk : chunk + 100_000],
            )
        index.commit()  # writes the log, then seals: trains and builds the index
        result["build_s"] = time.perf_counter() - start
        del base
        gc.collect()
        result["rss_mb"] = rss_mb() - before

        def search(q):
            return index.search(q, K)

        def update():
            index.upsert(touched, fresh, touched)
            index.commit()

    elif variant == "faiss":
        start = time.perf_counter()
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        inner = faiss.downcast_index(index)
        if getattr(inner, "do_polysemous_training", False):
            inner.do_polysemous_training = False
        if not index.is_trained:
            index.train(base)
        index.add(base)
        result["build_s"] = time.perf_counter() - start
        del base
        gc.collect()
        result["rss_mb"] = rss_mb() - before
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(efSearch=ef)
        elif faiss.try_extract_index_ivf(index) is not None:
            params = faiss.SearchParametersIVF(nprobe=nprobe)
        else:
            params = None

        def search(q):
            return index.search(q, K, params=params)

        update = None

    else:  # langchain
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy
        from langchain_core.embeddings import Embeddings

        class Precomputed(Embeddings):  # the store needs one; every vector is given
            def embed_documents(self, texts):
                raise NotImplementedError

            def embed_query(self, text):
                raise NotImplementedError

        start = time.perf_counter()
        store = FAISS.from_embeddings(
            [(str(i), vector) for i, vector in zip(ids.tolist(), base, strict=True)],
            Precomputed(),
            ids=[str(i) for i in ids.tolist()],
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        result["build_s"] = time.perf_counter() - start
        del base
        gc.collect()
        result["rss_mb"] = rss_mb() - before

        def search(q):
            return store.similarity_search_with_score_by_vector(q[0].tolist(), k=K)

        def update():
            keys = [str(i) for i in touched.tolist()]
            store.delete(keys)
            store.add_embeddings(list(zip(keys, fresh.tolist(), strict=True)), ids=keys)

    result["raw_mb"] = n * d * 4 / 2**20
    result["p50_ms"], result["p99_ms"] = latencies(search, single)
    if variant == "langchain":
        start = time.perf_counter()
        found = np.array(
            [[int(doc.page_content) for doc, _ in search(q[None, :])] for q in queries[:200]]
        )
        result["qps"] = 200 / (time.perf_counter() - start)
        result["recall@10"] = recall_at_k(found, truth[:200])
    else:
        start = time.perf_counter()
        _, found = search(queries)
        result["qps"] = len(queries) / (time.perf_counter() - start)
        result["recall@10"] = recall_at_k(found, truth)
    if update is not None:  # the median of 5 rounds: the first after a build also cleans up
        rounds = []
        for _ in range(5):
            start = time.perf_counter()
            update()
            rounds.append((time.perf_counter() - start) * 1000)
        result["update_1000_ms"] = float(np.median(rounds))
    return result


# --- sweep ---------------------------------------------------------------------------------


def sweep(data_dir: Path) -> list[dict]:
    import faiss

    base = np.load(data_dir / "base.npy")
    queries = np.load(data_dir / "queries.npy")
    truth = np.load(data_dir / "truth.npy")
    n, d = base.shape
    rows = []

    def measure(index, name: str, param: str, params, build_s: float) -> None:
        p50, p99 = latencies(lambda q: index.search(q, K, params=params), queries[:200])
        found = index.search(queries, K, params=params)[1]
        rows.append(
            {"index": name, "param": param, "build_s": build_s, "p50_ms": p50, "p99_ms": p99,
             "recall@10": recall_at_k(found, truth)}
        )  # fmt: skip

    hnsw = faiss.index_factory(d, "HNSW32", faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    hnsw.add(base)
    build = time.perf_counter() - start
    for ef in (64, 128, 256, 512, 1024):
        measure(hnsw, "HNSW32", f"efSearch={ef}", faiss.SearchParametersHNSW(efSearch=ef), build)
    del hnsw
    for nlist in sorted({256, 1024, int(4 * np.sqrt(n))}):
        if n < 39 * nlist:  # too few points to train that many lists
            continue
        ivf = faiss.index_factory(d, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        start = time.perf_counter()
        ivf.train(base[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)])
        ivf.add(base)
        build = time.perf_counter() - start
        for nprobe in (8, 16, 32, 64, 128):
            if nprobe <= nlist:
                params = faiss.SearchParametersIVF(nprobe=nprobe)
                measure(ivf, f"IVF{nlist},Flat", f"nprobe={nprobe}", params, build)
    return rows


# --- data sets -----------------------------------------------------------------------------


def real_embeddings(n_queries: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """all-MiniLM embeddings of up to `limit` shared posts (cached); n_queries become queries."""
    cache = REPO / "var" / "bench" / f"posts-minilm-{limit}.npy"
    if not cache.exists():
        from ml.embeddings import EncoderConfig, get_encoder

        shared = Path(os.environ.get("PLAZA_SHARED_DATA") or REPO.parent / "shared" / "data")
        texts = []
        for name in ("es-news-tweets.jsonl.gz", "us-airline-tweets.jsonl.gz"):
            with gzip.open(shared / "posts" / name, "rt") as lines:
                texts += [json.loads(line)["text"] for line in lines]
        texts = [texts[i] for i in np.random.default_rng(5).permutation(len(texts))[:limit]]
        print(f"encoding {len(texts)} posts once (cached at {cache})...", file=sys.stderr)
        vectors = get_encoder(EncoderConfig()).encode(texts)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    vectors = np.load(cache)
    return vectors[n_queries:], vectors[:n_queries]


def clustered_vectors(n: int, d: int, seed: int) -> np.ndarray:
    """Unit vectors around 1,000 topic centres: structure like real embeddings have."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(1000, d, seed=42)
    out = np.empty((n, d), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, 1000, m)] + 0.9 * unit_vectors(m, d, seed=seed + start)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


SWEEP_COLUMNS = [
    ("index", "index", ""),
    ("param", "param", ""),
    ("build s", "build_s", ".1f"),
    ("recall@10", "recall@10", ".3f"),
    ("p50 ms", "p50_ms", ".2f"),
    ("p99 ms", "p99_ms", ".2f"),
]
RESULT_COLUMNS = [
    ("data / variant / factory", "label", ""),
    ("build s", "build_s", ".1f"),
    ("mem MB", "rss_mb", ".0f"),
    ("mem/raw", "mem_ratio", ".2f"),
    ("p50 ms", "p50_ms", ".3f"),
    ("p99 ms", "p99_ms", ".3f"),
    ("batch q/s", "qps", ",.0f"),
    ("recall@10", "recall@10", ".3f"),
    ("1k upsert ms", "update_1000_ms", ".1f"),
    ("p50 / faiss", "vs_faiss_p50", ".2f"),
    ("langchain/us", "langchain_speedup", ".1f"),
]


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    header = "".join(
        f"{title:>{len(title) + 2 if i else 0}}" if i else f"{title:<26}"
        for i, (title, _, _) in enumerate(columns)
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = []
        for i, (title, key, fmt) in enumerate(columns):
            value = row.get(key)
            text = "n/a" if value is None else format(value, fmt)
            cells.append(f"{text:<26}" if i == 0 else f"{text:>{len(title) + 2}}")
        print("".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument(
        "--factories", default="HNSW32;IVF1024,Flat;Flat", help="';'-separated factory strings"
    )
    parser.add_argument("--ef", type=int, default=None, help="efSearch (default: IndexConfig's)")
    parser.add_argument("--nprobe", type=int, default=None, help="nprobe (default: IndexConfig's)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--real", action="store_true", help="also the shared posts' embeddings")
    parser.add_argument("--real-limit", type=int, default=20_000, help="posts to embed")
    parser.add_argument(
        "--data", default="random", help="'random' unit vectors or 'clustered' (topic mixture)"
    )
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--no-langchain", action="store_true")
    parser.add_argument(
        "--child", nargs=3, metavar=("VARIANT", "FACTORY", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    from ml.index import IndexConfig

    ef = args.ef or IndexConfig.ef_search
    nprobe = args.nprobe or IndexConfig.nprobe
    if args.child:
        variant, factory, data_dir = args.child
        print(json.dumps(run_variant(variant, factory, Path(data_dir), ef, nprobe)))
        return

    if args.data not in ("random", "clustered"):
        raise SystemExit(f"--data {args.data!r}: random or clustered")
    sizes = [int(n) for n in args.sizes.split(",") if n.strip() and int(n) > 0]  # 0: none
    datasets = [(f"{args.data}-{n // 1000}k", n, args.data) for n in sizes]
    if args.real:
        datasets.append(("posts-minilm", 0, "real"))
    os.environ["BENCH_LATENCY_QUERIES"] = str(args.latency_queries)
    results, sweeps = [], {}
    with tempfile.TemporaryDirectory(dir=REPO / "var" if (REPO / "var").is_dir() else None) as tmp:
        for name, n, kind in datasets:
            data_dir = Path(tmp) / name
            data_dir.mkdir()
            if kind == "real":
                base, queries = real_embeddings(args.queries, args.real_limit)
            elif kind == "clustered":
                base = clustered_vectors(n, args.dim, seed=1)
                queries = clustered_vectors(args.queries, args.dim, seed=2)
            else:
                base = unit_vectors(n, args.dim, seed=1)
                queries = unit_vectors(args.queries, args.dim, seed=2)
            np.save(data_dir / "base.npy", base)
            np.save(data_dir / "queries.npy", queries)
            np.save(data_dir / "truth.npy", exact_top_k(base, queries, K))
            del base, queries
            if args.sweep:
                sweeps[name] = sweep(data_dir)
                print(f"\nsweep on {name} (raw FAISS, 2 cores)")
                print_table(sweeps[name], SWEEP_COLUMNS)
            variants = [(v, f) for f in args.factories.split(";") for v in ("plaza", "faiss")]
            if not args.no_langchain:
                variants.append(("langchain", "Flat"))
            for variant, factory in variants:
                child = subprocess.run(
                    [sys.executable, __file__, "--child", variant, factory, str(data_dir),
                     *(["--ef", str(ef)]), *(["--nprobe", str(nprobe)])],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if child.returncode != 0:
                    print(
                        f"{name} {variant} {factory} failed:\n{child.stderr[-2000:]}",
                        file=sys.stderr,
                    )
                    continue
                row = json.loads(child.stdout.strip().splitlines()[-1])
                row["dataset"] = name
                row["label"] = f"{name} {variant} {factory}"
                row["mem_ratio"] = row["rss_mb"] / row["raw_mb"]
                results.append(row)
                print(f"  done: {row['label']} ({row['build_s']:.0f} s build)", file=sys.stderr)
            shutil.rmtree(data_dir)

    # Ratios: plaza against raw FAISS (same factory) and LangChain on the same data.
    for row in results:
        if row["variant"] != "plaza":
            continue
        peers = {(r["variant"], r["factory"]): r for r in results if r["dataset"] == row["dataset"]}
        raw, lc = peers.get(("faiss", row["factory"])), peers.get(("langchain", "Flat"))
        if raw:
            row["vs_faiss_p50"] = row["p50_ms"] / raw["p50_ms"]
        if lc:
            row["langchain_speedup"] = lc["p50_ms"] / row["p50_ms"]
    print(f"\nindex benchmark (efSearch={ef}, nprobe={nprobe}, k={K}, {os.cpu_count()} cores)")
    print_table(results, RESULT_COLUMNS)
    print(json.dumps({"results": results, "sweeps": sweeps}))


if __name__ == "__main__":
    main()
