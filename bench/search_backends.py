"""Search backends side by side: `faiss` and `postgres` built on the same vectors.

    .venv/bin/python bench/search_backends.py [--synthetic N] [--no-posts] [--queries Q]
                                              [--live-rows R] [--data-dir var/bench-backends]
                                              [--database-url postgres://.../plaza_bench]

Data sets (each built into both backends, one after the other, in this process):
  synthetic  N clustered unit vectors (default 1,000,000; 0 skips it), 384-d: 1,000 topic
             centres plus gaussian noise, with Zipf-distributed authors (20,000), languages
             (en 50%, es 20%, pt 10%, ...) and times spread over 365 days. Seeded.
  posts      the shared posts (../shared/data/posts/ or PLAZA_SHARED_DATA; --no-posts skips
             them), imported with `import_posts` and embedded once with the site's encoder
             (PLAZA_EMBED_MODEL); the vectors are cached under the data dir by content hash,
             so a later run skips the encode. Real authors, languages and times.
Builds:
  faiss      ml.index.SegmentedIndex with the site's IndexConfig, seal_size covering N (one
             sealed HNSW segment, as bench/index.py): upsert + commit + seal.
  postgres   search.backends.postgres on a scratch IndexGeneration: generation_create(bulk)
             + build_write in PLAZA_INDEX_BUILD_CHUNK chunks (load), then generation_finish
             (HNSW + GIN + ANALYZE: index).
Then, per backend: Q queries (perturbed cluster centres, or perturbed vectors of random
posts), top 10, one at a time, warm (every query once before timing), through the
backend's `dense()`, unfiltered, `lang + last 15 days` and one author holding about 1% of
the rows (plus, where one exists, an extra row: an author with about twice the rows the
postgres backend searches exactly, so its filtered HNSW path is timed too); p50/p95
latency and recall@10 against exact search (numpy over the rows that pass the filter).
The synthetic rows have no posts in the database, so there the faiss backend's allow set
(which it reads from the posts table) is computed in numpy inside the timed call and
passed as `allow_ids`. Last, the live insert rate: R rows upserted 100 at a time into the
finished index (faiss: upsert + commit per batch).

Prints the machine (and its load average at the start and the end: other work on a shared
machine skews the timings), PostgreSQL's settings, a build table, a search table with the
postgres/faiss ratio per row, the goal (postgres filtered search p50 <= 20 ms at recall
>= 0.95 at 1M) and a JSON line. The scratch database is dropped and made again (its name
must contain "bench"; bench/scratch.py); PostgreSQL must be running (platform/postgres.sh).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads from a hub

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scratch import scratch_database_recreate  # noqa: E402
from bench.search_api import FILES as POST_FILES  # noqa: E402  (the shared posts)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5433/plaza_bench"
MARKER = ".plaza-bench-backends.json"  # a data dir holding it was made here and may be wiped
K = 10
DIM = 384
WINDOW = timedelta(days=15)
LIVE_BATCH = 100
GOAL_P50_MS, GOAL_RECALL, GOAL_ROWS = 20.0, 0.95, 1_000_000
# The synthetic set: topics, authors (Zipf, s=1), languages and a year of time.
CENTRES, AUTHORS, NOISE = 1_000, 20_000, 0.9
LANGS = {"en": 0.5, "es": 0.2, "pt": 0.1, "fr": 0.08, "de": 0.06, "it": 0.03, "ja": 0.03}
SYNTHETIC_END = datetime(2025, 6, 30, tzinfo=UTC)


@dataclass
class DataSet:
    """One corpus as both backends take it: columns by row, (n, d) unit float32 vectors."""

    name: str
    ids: np.ndarray  # (n,) int64 post ids
    vectors: np.ndarray  # (n, d) float32, unit
    ts: np.ndarray  # (n,) int64 unix seconds
    authors: np.ndarray  # (n,) int64
    langs: np.ndarray  # (n,) str
    texts: list[str] | None = None  # None: two made-up words a row (synthetic)
    hashes: list[str] | None = None  # content hashes; None: made from the id
    in_database: bool = False  # whether the posts table holds these rows
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, start: int, stop: int) -> list[dict]:
        """Post rows (search.backends.POST_ROW_FIELDS) of positions [start, stop)."""
        out = []
        for i in range(start, stop):
            pk = int(self.ids[i])
            out.append(
                {
                    "id": pk,
                    "text": self.texts[i] if self.texts is not None else f"topic{pk % 997} w{pk}",
                    "created_at": datetime.fromtimestamp(int(self.ts[i]), UTC),
                    "content_hash": self.hashes[i] if self.hashes is not None else f"{pk:064x}",
                    "author_id": int(self.authors[i]),
                    "lang": str(self.langs[i]),
                }
            )
        return out


@dataclass
class Probe:
    """One kind of query: its filter, the rows it allows, and the exact answers."""

    name: str
    lang: str | None = None
    since: datetime | None = None
    author: int | None = None
    mask: np.ndarray | None = None  # (n,) bool: rows that pass; None = all
    extra: bool = False  # beyond the three the goal judges (shown, not judged)
    truth: list[np.ndarray] = field(default_factory=list)  # per query, exact top-k ids

    @property
    def matches(self) -> int:
        return int(self.mask.sum()) if self.mask is not None else -1


# --- the machine -----------------------------------------------------------------------------


def machine() -> dict:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        lscpu = ""
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cpu": fields.get("Model name", "unknown").strip(),
        "cores": os.cpu_count(),
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "mem_gib": round(mem_kb / 2**20, 1),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


# --- data sets -------------------------------------------------------------------------------


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic_set(n: int, seed: int = 1) -> tuple[DataSet, np.ndarray]:
    """`n` clustered rows and the cluster centres ((CENTRES, DIM), unit)."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((CENTRES, DIM), dtype=np.float32))
    topic = rng.integers(0, CENTRES, n)
    vectors = np.empty((n, DIM), np.float32)
    scale = NOISE / np.sqrt(DIM)  # the noise's norm is about NOISE (the centre's is 1)
    for start in range(0, n, 100_000):  # in chunks: temporaries stay small
        stop = min(n, start + 100_000)
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32) * scale
        vectors[start:stop] = unit_rows(centres[topic[start:stop]] + noise)
    weights = 1.0 / np.arange(1, AUTHORS + 1)
    authors = rng.choice(AUTHORS, n, p=weights / weights.sum()).astype(np.int64) + 1
    langs = rng.choice(np.array(list(LANGS)), n, p=np.array(list(LANGS.values())))
    end = int(SYNTHETIC_END.timestamp())
    ts = end - rng.integers(0, 365 * 86400, n).astype(np.int64)
    data = DataSet(
        name=f"synthetic-{n // 1000}k" if n >= 1000 else f"synthetic-{n}",
        ids=np.arange(1, n + 1, dtype=np.int64),
        vectors=vectors,
        ts=ts,
        authors=authors,
        langs=langs,
    )
    data.notes.append(
        "synthetic: no posts rows, so faiss's author/lang allow set is computed in numpy "
        "inside each timed query (the backend reads it from the posts table)"
    )
    return data, centres


def posts_import() -> None:
    from django.core.management import call_command

    for path in POST_FILES:
        print(f"importing {path.name}...", file=sys.stderr)
        try:
            call_command("import_posts", str(path), "--no-progress", stdout=sys.stderr)
        except SystemExit as exc:  # 2: some records rejected (reported above), the rest in
            if exc.code != 2:
                raise


def posts_set(data_dir: Path) -> DataSet:
    """The imported posts with their vectors, encoded once and cached by content hash."""
    from django.conf import settings
    from django.utils.text import slugify

    from posts.models import Post
    from search import indexes
    from search.backends import POST_ROW_FIELDS

    rows = list(Post.objects.visible().order_by("id").values(*POST_ROW_FIELDS))
    model = settings.PLAZA_EMBED_MODEL
    slug = slugify(model.removeprefix("bundled:"))[:60]
    vectors_path = data_dir / f"posts-{slug}-vectors.npy"
    hashes_path = data_dir / f"posts-{slug}-hashes.npy"
    cached: dict[str, np.ndarray] = {}
    if vectors_path.exists() and hashes_path.exists():
        known = np.load(vectors_path, mmap_mode="r")
        cached = {str(h): known[i] for i, h in enumerate(np.load(hashes_path))}
    missing = sorted({r["content_hash"] for r in rows} - set(cached))
    if missing:
        text_of = {r["content_hash"]: r["text"] for r in rows}
        encoder = indexes.encoder_for(model)
        print(
            f"encoding {len(missing):,} posts with {model} once (cached at {vectors_path})...",
            file=sys.stderr,
        )
        started = time.perf_counter()
        for start in range(0, len(missing), 2048):
            batch = missing[start : start + 2048]
            for content_hash, vector in zip(
                batch, encoder.encode([text_of[h] for h in batch]), strict=True
            ):
                cached[content_hash] = vector
            done = min(len(missing), start + 2048)
            elapsed = time.perf_counter() - started
            print(f"  {done:,}/{len(missing):,} encoded, {elapsed:.0f} s", file=sys.stderr)
        hashes = sorted(cached)
        data_dir.mkdir(parents=True, exist_ok=True)
        np.save(vectors_path, np.stack([cached[h] for h in hashes]).astype(np.float32))
        np.save(hashes_path, np.array(hashes))
    data = DataSet(
        name="posts",
        ids=np.fromiter((r["id"] for r in rows), np.int64, len(rows)),
        vectors=np.stack([cached[r["content_hash"]] for r in rows]).astype(np.float32),
        ts=np.fromiter((int(r["created_at"].timestamp()) for r in rows), np.int64, len(rows)),
        authors=np.fromiter((r["author_id"] for r in rows), np.int64, len(rows)),
        langs=np.array([r["lang"] or "" for r in rows]),
        texts=[r["text"] for r in rows],
        hashes=[r["content_hash"] for r in rows],
        in_database=True,
    )
    data.notes.append(f"posts: {len(rows):,} shared posts embedded with {model}")
    return data


# --- queries and exact answers ---------------------------------------------------------------


def queries_for(data: DataSet, centres: np.ndarray | None, n: int, seed: int) -> np.ndarray:
    """(n, d) unit queries: perturbed cluster centres, or perturbed vectors of random rows."""
    rng = np.random.default_rng(seed)
    base = (
        centres[rng.integers(0, len(centres), n)]
        if centres is not None
        else data.vectors[rng.choice(len(data), n, replace=False)]
    )
    noise = rng.standard_normal(base.shape, dtype=np.float32) * (0.5 / np.sqrt(base.shape[1]))
    return unit_rows(base + noise)


def probes_for(data: DataSet) -> list[Probe]:
    """Unfiltered; the window's commonest language over the last 15 days; an author with
    about 1% of the rows; and, where one exists, an author with about twice the rows the
    postgres backend searches exactly (so its filtered HNSW path is timed too)."""
    from search.backends.postgres import EXACT_BELOW

    newest = int(data.ts.max())
    since = datetime.fromtimestamp(newest, UTC) - WINDOW
    recent = data.ts >= int(since.timestamp())
    codes, counts = np.unique(data.langs[recent], return_counts=True)
    lang = str(codes[np.argmax(counts)])
    authors, per_author = np.unique(data.authors, return_counts=True)
    author = int(authors[np.argmin(np.abs(per_author - 0.01 * len(data)))])
    probes = [
        Probe("unfiltered"),
        Probe(
            f"lang={lang} + last 15 days",
            lang=lang,
            since=since,
            mask=recent & (data.langs == lang),
        ),
        Probe(f"author {author} (~1%)", author=author, mask=data.authors == author),
    ]
    big = per_author > EXACT_BELOW
    if big.any():
        pick = np.flatnonzero(big)[np.argmin(np.abs(per_author[big] - 2 * EXACT_BELOW))]
        if int(authors[pick]) != author:
            share = per_author[pick] / len(data)
            probes.append(
                Probe(
                    f"author {int(authors[pick])} ({share:.1%})",
                    author=int(authors[pick]),
                    mask=data.authors == authors[pick],
                    extra=True,
                )
            )
    return probes


def exact_top_k(data: DataSet, queries: np.ndarray, mask: np.ndarray | None) -> list[np.ndarray]:
    """Per query, the ids of the k nearest rows among those `mask` allows (brute force)."""
    positions = np.arange(len(data)) if mask is None else np.flatnonzero(mask)
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_ids = np.empty((len(queries), 0), np.int64)
    for start in range(0, len(positions), 100_000):  # (chunk, q) scores stay small
        chunk = positions[start : start + 100_000]
        scores = np.hstack([best_scores, queries @ data.vectors[chunk].T])  # (q, k + chunk)
        ids = np.hstack([best_ids, np.broadcast_to(data.ids[chunk], (len(queries), len(chunk)))])
        keep = min(K, scores.shape[1])
        top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_ids = np.take_along_axis(ids, top, axis=1)
    return [row for row in best_ids]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    if not len(truth):
        return 1.0
    return len(set(found.tolist()) & set(truth.tolist())) / len(truth)


# --- timing ----------------------------------------------------------------------------------


def measure(search, queries: np.ndarray, probe: Probe) -> dict:
    """Warm (every query once), then each query timed alone: p50/p95 ms and recall@k."""
    for q in queries:
        search(q)
    times, recalls = [], []
    for q, truth in zip(queries, probe.truth, strict=True):
        started = time.perf_counter()
        found = search(q)
        times.append((time.perf_counter() - started) * 1000)
        recalls.append(recall(found, truth))
    return {
        "query": probe.name,
        "extra": probe.extra,
        "matches": probe.matches,
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "recall@10": float(np.mean(recalls)),
        "min_recall": float(np.min(recalls)),
    }


def live_rows(data: DataSet, n: int, seed: int) -> tuple[DataSet, np.ndarray]:
    """`n` new rows (ids past the set's) near existing ones, with their vectors."""
    rng = np.random.default_rng(seed)
    source = rng.choice(len(data), n, replace=True)
    noise = rng.standard_normal((n, data.vectors.shape[1]), dtype=np.float32) * 0.02
    new = DataSet(
        name=f"{data.name}-live",
        ids=np.arange(int(data.ids.max()) + 1, int(data.ids.max()) + 1 + n, dtype=np.int64),
        vectors=unit_rows(data.vectors[source] + noise),
        ts=data.ts[source],
        authors=data.authors[source],
        langs=data.langs[source],
        texts=[data.texts[i] for i in source] if data.texts is not None else None,
        hashes=[f"{i:064x}" for i in range(n)] if data.hashes is not None else None,
    )
    return new, new.vectors


# --- faiss -----------------------------------------------------------------------------------


def faiss_run(data, generation, queries, probes, live_n: int) -> dict:
    from ml.index import SegmentedIndex
    from search import indexes
    from search.backends import Filters
    from search.backends.faiss import FaissBackend

    config = indexes.index_config()
    folder = indexes.generation_folder(generation.name) / "vectors"
    shutil.rmtree(folder.parent, ignore_errors=True)
    tags = np.fromiter(
        (indexes.tag_of(h, int(t)) for h, t in zip(hashes_of(data), data.ts, strict=True)),
        np.int64,
        len(data),
    )
    started = time.perf_counter()
    index = SegmentedIndex.open(folder, DIM, config=config)
    for start in range(0, len(data), 100_000):
        stop = start + 100_000
        index.upsert(data.ids[start:stop], data.vectors[start:stop], data.ts[start:stop],
                     tags[start:stop])  # fmt: skip
    index.commit()  # the log, then (holding seal_size) the sealed HNSW segment
    index.seal()  # anything left in the active segment (a no-op when commit sealed it)
    build_s = time.perf_counter() - started
    segments = index.stats()["sealed_segments"]
    index.close()
    del index
    gc.collect()

    backend = FaissBackend()
    results = []
    for probe in probes:
        since = probe.since
        if data.in_database or (probe.lang is None and probe.author is None):

            def search(q, probe=probe, since=since):
                filters = Filters(
                    lang=probe.lang,
                    since=since,
                    author_ids=[probe.author] if probe.author is not None else None,
                )
                return backend.dense(generation, q, depth=K, filters=filters).ids

        else:  # no posts rows: the allow set the backend would read, computed here

            def search(q, probe=probe, since=since):
                keep = data.langs == probe.lang if probe.lang else data.authors == probe.author
                filters = Filters(since=since, allow_ids=data.ids[keep])
                return backend.dense(generation, q, depth=K, filters=filters).ids

        results.append(measure(search, queries, probe))

    new, vectors = live_rows(data, live_n, seed=11)
    new_tags = np.fromiter(
        (indexes.tag_of(h, int(t)) for h, t in zip(hashes_of(new), new.ts, strict=True)),
        np.int64,
        len(new),
    )
    writer = indexes.writer_for(generation)
    started = time.perf_counter()
    for start in range(0, live_n, LIVE_BATCH):
        stop = start + LIVE_BATCH
        writer.upsert(new.ids[start:stop], vectors[start:stop], new.ts[start:stop],
                      new_tags[start:stop])  # fmt: skip
        writer.commit()
    live_s = time.perf_counter() - started
    indexes.close_all()
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {
        "backend": "faiss",
        "rows": len(data),
        "load_s": None,
        "index_s": None,
        "build_s": build_s,
        "rows_per_s": len(data) / build_s,
        "live_rows_per_s": live_n / live_s,
        "config": f"{config.factory}, seal_size={config.seal_size:,}, ef={config.ef_search}, "
        f"{segments} sealed segment(s)",
        "disk_mb": disk / 2**20,
        "search": results,
    }


def hashes_of(data: DataSet) -> list[str]:
    return data.hashes if data.hashes is not None else [f"{pk:064x}" for pk in data.ids.tolist()]


# --- postgres --------------------------------------------------------------------------------


def pg_index_bytes(table: str, method: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
            " JOIN pg_inherits h ON h.inhrelid = i.indrelid"
            " WHERE h.inhparent = %s::regclass AND am.amname = %s",
            [table, method],
        )
        return int(cursor.fetchone()[0])


def postgres_run(data, generation, queries, probes, live_n: int) -> dict:
    from django.conf import settings
    from django.db import connection

    from search.backends import Filters
    from search.backends.postgres import PostgresBackend, table_of

    backend = PostgresBackend()
    table = table_of(generation)
    chunk = settings.PLAZA_INDEX_BUILD_CHUNK
    load_s = 0.0
    started = time.perf_counter()
    backend.generation_create(generation, bulk=True)
    load_s += time.perf_counter() - started
    for number, start in enumerate(range(0, len(data), chunk)):
        stop = min(len(data), start + chunk)
        rows = data.rows(start, stop)  # made outside the timing: the rows a worker reads
        started = time.perf_counter()
        backend.build_write(generation, number, rows, data.vectors[start:stop])
        load_s += time.perf_counter() - started
        if number % 50 == 49:
            print(f"  postgres load {stop:,}/{len(data):,}, {load_s:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    backend.generation_finish(generation)
    index_s = time.perf_counter() - started
    sizes = {
        "hnsw_mb": pg_index_bytes(table, "hnsw") / 2**20,
        "gin_mb": pg_index_bytes(table, "gin") / 2**20,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
            " WHERE inhparent = %s::regclass",
            [table],
        )
        sizes["total_mb"] = int(cursor.fetchone()[0]) / 2**20

    results = []
    for probe in probes:
        paths: list[bool] = []

        def search(q, probe=probe, paths=paths):
            filters = Filters(
                lang=probe.lang,
                since=probe.since,
                author_ids=[probe.author] if probe.author is not None else None,
            )
            ids = backend.dense(generation, q, depth=K, filters=filters).ids
            paths.append(filters.cache.get(("pg-few", table), False))
            return ids

        result = measure(search, queries, probe)
        result["pg_path"] = (
            "exact (few rows)" if all(paths) else "hnsw" if not any(paths) else "mixed"
        )
        results.append(result)

    new, vectors = live_rows(data, live_n, seed=11)
    started = time.perf_counter()
    for start in range(0, live_n, LIVE_BATCH):
        stop = start + LIVE_BATCH
        backend.upsert(generation, new.rows(start, stop), vectors[start:stop])
    live_s = time.perf_counter() - started
    build_s = load_s + index_s
    return {
        "backend": "postgres",
        "rows": len(data),
        "load_s": load_s,
        "load_rows_per_s": len(data) / load_s,
        "index_s": index_s,
        "build_s": build_s,
        "rows_per_s": len(data) / build_s,
        "live_rows_per_s": live_n / live_s,
        "config": f"halfvec HNSW m={settings.PLAZA_PG_HNSW_M}, "
        f"ef_construction={settings.PLAZA_PG_HNSW_EF_CONSTRUCTION}, "
        f"ef_search={settings.PLAZA_PG_EF_SEARCH}, "
        f"max_scan_tuples={settings.PLAZA_PG_MAX_SCAN_TUPLES:,}, build_write x {chunk:,}",
        **sizes,
        "search": results,
    }


def pg_settings() -> dict:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'),"
            " (SELECT extversion FROM pg_extension WHERE extname = 'vector'),"
            " current_setting('shared_buffers'),"
            " current_setting('max_parallel_maintenance_workers'),"
            " current_setting('max_parallel_workers'), current_setting('work_mem')"
        )
        version, vector, shared, maint_workers, workers, work_mem = cursor.fetchone()
    return {
        "server": version,
        "pgvector": vector,
        "shared_buffers": shared,
        "build_memory": settings.PLAZA_PG_BUILD_MEMORY,
        "max_parallel_maintenance_workers": maint_workers,
        "max_parallel_workers": workers,
        "work_mem": work_mem,
    }


# --- output ----------------------------------------------------------------------------------


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_build(dataset: str, runs: list[dict]) -> None:
    header = (
        f"{'backend':<10}{'rows':>11}{'load s':>9}{'load rows/s':>13}{'index s':>9}"
        f"{'build s':>9}{'rows/s':>9}{'live rows/s':>13}  config"
    )
    print(f"\nbuild: {dataset}")
    print(header)
    print("-" * len(header))
    for run in runs:
        print(
            f"{run['backend']:<10}{run['rows']:>11,}{fmt(run['load_s'], '.1f'):>9}"
            f"{fmt(run.get('load_rows_per_s'), ',.0f'):>13}{fmt(run['index_s'], '.1f'):>9}"
            f"{run['build_s']:>9.1f}{run['rows_per_s']:>9,.0f}{run['live_rows_per_s']:>13,.0f}"
            f"  {run['config']}"
        )
    pg = next((r for r in runs if r["backend"] == "postgres"), None)
    faiss = next((r for r in runs if r["backend"] == "faiss"), None)
    if pg and faiss:
        print(
            f"postgres/faiss: build {pg['build_s'] / faiss['build_s']:.2f}x, live insert rate "
            f"{pg['live_rows_per_s'] / faiss['live_rows_per_s']:.2f}x; postgres table "
            f"{pg['total_mb']:,.0f} MB (HNSW {pg['hnsw_mb']:,.0f} MB, GIN {pg['gin_mb']:,.0f} MB),"
            f" faiss files {faiss['disk_mb']:,.0f} MB"
        )


def print_search(dataset: str, runs: list[dict], queries: int) -> None:
    header = (
        f"{'backend':<10}{'query':<30}{'matches':>10}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'recall@10':>11}{'min rec':>9}{'pg/faiss p50':>14}  path"
    )
    print(f"\nsearch: {dataset}, {queries} queries, top {K}, one at a time, warm")
    print(header)
    print("-" * len(header))
    faiss = {r["query"]: r for run in runs if run["backend"] == "faiss" for r in run["search"]}
    for run in runs:
        for row in run["search"]:
            ratio = None
            if run["backend"] == "postgres" and row["query"] in faiss:
                ratio = row["p50_ms"] / faiss[row["query"]]["p50_ms"]
                row["vs_faiss_p50"] = ratio
            matches = "all" if row["matches"] < 0 else f"{row['matches']:,}"
            print(
                f"{run['backend']:<10}{row['query']:<30}{matches:>10}{row['p50_ms']:>9.2f}"
                f"{row['p95_ms']:>9.2f}{row['recall@10']:>11.3f}{row['min_recall']:>9.2f}"
                f"{fmt(ratio, '.2f') + ('x' if ratio else ''):>14}  {row.get('pg_path', '')}"
            )


def goal_of(results: dict) -> str:
    """The goal, judged on a synthetic set of at least GOAL_ROWS rows."""
    line = (
        f"goal: postgres filtered search p50 <= {GOAL_P50_MS:g} ms at recall >= "
        f"{GOAL_RECALL:g} at 1M: "
    )
    big = [r for r in results.values() if r["synthetic"] and r["rows"] >= GOAL_ROWS]
    if not big:
        return line + "not measured (no synthetic set of 1M rows in this run)"
    pg = next(run for run in big[0]["runs"] if run["backend"] == "postgres")
    filtered = [row for row in pg["search"] if row["query"] != "unfiltered"]
    judged = [row for row in filtered if not row["extra"]]
    met = all(r["p50_ms"] <= GOAL_P50_MS and r["recall@10"] >= GOAL_RECALL for r in judged)
    detail = "; ".join(
        f"{r['query']}{' (extra)' if r['extra'] else ''}: p50 {r['p50_ms']:.1f} ms, "
        f"recall {r['recall@10']:.3f}"
        for r in filtered
    )
    return line + ("met" if met else "NOT met") + f" ({detail})"


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", type=int, default=1_000_000, help="rows (0: skip)")
    parser.add_argument("--no-posts", action="store_true", help="skip the shared posts")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--live-rows", type=int, default=2_000, help="live inserts, 100 a batch")
    parser.add_argument("--data-dir", type=Path, default=REPO / "var" / "bench-backends")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="scratch PostgreSQL database, dropped and made again (its name says bench)",
    )
    args = parser.parse_args()
    if args.synthetic < 0 or args.queries < 1 or args.live_rows < LIVE_BATCH:
        raise SystemExit(
            f"--synthetic must be >= 0, --queries >= 1 and --live-rows >= {LIVE_BATCH}"
        )
    posts_missing = [str(p) for p in POST_FILES if not p.is_file()]
    want_posts = not args.no_posts and not posts_missing
    if not args.no_posts and posts_missing:
        print(
            f"posts: skipped, shared data not found ({', '.join(posts_missing)}); set "
            "PLAZA_SHARED_DATA or pass --no-posts",
            file=sys.stderr,
        )
    if not args.synthetic and not want_posts:
        raise SystemExit("nothing to run: --synthetic 0 and no posts")

    data_dir = args.data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()) and not (data_dir / MARKER).exists():
        raise SystemExit(
            f"{data_dir}: exists, is not empty and was not made by this benchmark (no {MARKER});"
            " its index folder is wiped each run, so pass an empty or new --data-dir"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text(json.dumps({"made_by": "bench/search_backends.py"}))
    shutil.rmtree(data_dir / "index", ignore_errors=True)
    os.environ.update(
        DATABASE_URL=args.database_url,
        PLAZA_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="config.settings",
        CELERY_BROKER_URL="filesystem://",  # no worker: the import's flushes stay in files
        DJANGO_DEBUG="0",  # no query log
        DJANGO_ALLOWED_HOSTS="localhost",
        # One sealed segment holding the whole set, as bench/index.py builds.
        PLAZA_INDEX_SEAL_SIZE=str(max(args.synthetic, 200_000)),
    )
    os.environ.setdefault("PLAZA_PG_BUILD_MEMORY", "4GB")  # the 1M HNSW build in memory
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-backends")
    os.environ.setdefault("PLAZA_LOG_LEVEL", "WARNING")
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    scratch_database_recreate(args.database_url)

    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic
    import django

    django.setup()
    from django.core.management import call_command

    from search.models import IndexGeneration

    call_command("migrate", verbosity=0, interactive=False)
    host = machine()
    pg = pg_settings()
    print(
        f"machine: {host['cpu']}, {host['cores']} cores, AVX2 {'yes' if host['avx2'] else 'no'},"
        f" AVX-512 {'yes' if host['avx512'] else 'no'}, {host['mem_gib']} GiB"
    )
    started_load = load_average()
    print(f"load average at start: {started_load}")
    print(
        f"postgres: {pg['server']}, pgvector {pg['pgvector']}, shared_buffers "
        f"{pg['shared_buffers']}, build memory {pg['build_memory']}, parallel maintenance "
        f"workers {pg['max_parallel_maintenance_workers']}"
    )
    sys.stdout.flush()

    sets: list[tuple[str, int]] = []
    if args.synthetic:
        sets.append(("synthetic", args.synthetic))
    if want_posts:
        sets.append(("posts", 0))
    results: dict[str, dict] = {}
    for kind, n in sets:
        started = time.perf_counter()
        if kind == "synthetic":
            data, centres = synthetic_set(n)
        else:
            posts_import()
            data, centres = posts_set(data_dir), None
        prepare_s = time.perf_counter() - started
        queries = queries_for(data, centres, args.queries, seed=2)
        probes = probes_for(data)
        for probe in probes:
            probe.truth = exact_top_k(data, queries, probe.mask)
        print(
            f"\n{data.name}: {len(data):,} rows, {DIM}-d, made in {prepare_s:.0f} s; "
            + "; ".join(
                f"{p.name}: {'all' if p.matches < 0 else f'{p.matches:,}'} rows" for p in probes
            ),
            file=sys.stderr,
        )
        generation = IndexGeneration.objects.create(
            name=f"bench-{data.name}", embed_model="bench", dim=DIM
        )
        runs = []
        print(f"{data.name}: faiss build and search...", file=sys.stderr)
        runs.append(faiss_run(data, generation, queries, probes, args.live_rows))
        gc.collect()
        print(f"{data.name}: postgres build and search...", file=sys.stderr)
        runs.append(postgres_run(data, generation, queries, probes, args.live_rows))
        results[data.name] = {
            "rows": len(data),
            "synthetic": kind == "synthetic",
            "notes": data.notes,
            "runs": runs,
        }
        print_build(data.name, runs)
        print_search(data.name, runs, args.queries)
        for note in data.notes:
            print(f"note: {note}")
        sys.stdout.flush()
        del data, queries, probes
        gc.collect()

    print(
        f"\nmachine: {host['cpu']}, {host['cores']} cores, AVX2 {'yes' if host['avx2'] else 'no'},"
        f" AVX-512 {'yes' if host['avx512'] else 'no'}"
    )
    ended_load = load_average()
    print(f"load average at start: {started_load}, at the end: {ended_load}")
    goal = goal_of(results)
    print(goal)
    print(json.dumps({"machine": host, "postgres": pg, "queries": args.queries, "k": K,
                      "load_average": [started_load, ended_load], "goal": goal,
                      "datasets": results}))  # fmt: skip


if __name__ == "__main__":
    main()
