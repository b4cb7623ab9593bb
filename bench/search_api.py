"""Search latency: `GET /api/search` against the raw libraries it wraps, same run.

    .venv/bin/python bench/search_api.py [--data-dir var/bench-search] [--limit-posts M]
                                         [--queries N] [--reuse | --rebuild]

Imports both shared post files (es-news-tweets, 33,605 Spanish news tweets, and
us-airline-tweets, 14,077 English; ../shared/data/posts/ or PLAZA_SHARED_DATA) into its own
data dir with `import_posts`, and builds the index in this process with
`search.services.generations.generation_build()` (about 10-15 minutes for all 47k posts on
2 CPU cores; `--limit-posts M` takes the first M posts, in the files' proportions, to try
it on less).
A later run finds the built index and reuses it when it was made with the same
--limit-posts (`--reuse`: whatever it was made with; `--rebuild`: start over).

Then, in one process, after a warm-up pass, it times N queries (a fixed list of realistic
Spanish and English queries, a third with operators: lang:, from:<a handle in the data>,
since:, "phrases", -exclusions), each through, in rotating order:
  - baseline: the raw libraries on the query's words, over the same posts:
    SentenceTransformer.encode([q]) + faiss IndexFlatIP over the live generation's vectors
    + a BM25 (bm25s) search, both 100 deep (search's candidate depth);
  - search.selectors.search_posts(query=q, k=10): filters, fusion, loading the posts;
  - GET /api/search?q=...&k=10 through Django's test client with a token (DEBUG off):
    the above plus auth, parameter checks and the JSON.
Prints p50/p95 per path, the ratio to the baseline, the goal (API p50 <= 50 ms) and a
JSON line. SQLite under the data dir unless DATABASE_URL names a scratch database
(its name must contain "bench": a rebuild drops it).

The search backend is the site's: PLAZA_SEARCH_BACKEND (faiss, the default, or postgres,
which needs DATABASE_URL to be PostgreSQL with pgvector), named in the header and the JSON
line. The baseline reads the same data either way: with faiss the generation's
SegmentedIndex vectors and its BM25 build (search.indexes.reader_for); with postgres the
vectors of its table (`search_pg_<id>`, halfvec, read as float32) and a BM25 build made
here from the posts, as the faiss backend makes one (search.services.bm25.bm25_build).

    DATABASE_URL=postgres://postgres@127.0.0.1:5433/plaza_bench_api PLAZA_SEARCH_BACKEND=postgres \
        .venv/bin/python bench/search_api.py --limit-posts 10000 --data-dir var/bench-search-pg
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads from a hub

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scratch import scratch_database_recreate  # noqa: E402

SHARED_DATA = Path(os.environ.get("PLAZA_SHARED_DATA") or REPO.parent / "shared" / "data")
FILES = [
    SHARED_DATA / "posts" / "es-news-tweets.jsonl.gz",
    SHARED_DATA / "posts" / "us-airline-tweets.jsonl.gz",
]
MARKER = ".plaza-bench-search.json"  # what this data dir holds; a dir with it may be wiped
GOAL_API_P50_MS = 50.0
K = 10
DEPTH = 100  # candidates per method, as search.selectors.MIN_DEPTH

# Realistic queries over the two files: Spanish news 2021-06..2022-07, US airlines 2015-02.
QUERIES = [
    "vacunas covid tercera dosis",
    "¿cuántos contagios hubo hoy en México?",
    "inflación y precio de la gasolina",
    "invasión rusa de Ucrania",
    "resultados de las elecciones presidenciales",
    "terremoto hoy",
    "variante ómicron casos",
    "subida de la luz en España",
    "Real Madrid campeón de la Champions",
    "incendio forestal evacuados",
    "reforma laboral aprobada en el congreso",
    "flight delayed for hours no explanation",
    "lost my luggage",
    "on hold with customer service for an hour",
    "cancelled flight need a refund",
    "great crew, thank you",
    "upgrade to first class",
    "wifi not working on the plane",
    'vacunas "tercera dosis" lang:es',
    "from:el_pais Ucrania",
    "inflación since:2022-01-01",
    "covid -vacuna lang:es",
    "ómicron from:EFEnoticias since:2021-11-15",
    "from:JetBlueNews fleet",
    "delayed flight Chicago lang:en",
    '"customer service" -phone',
    "baggage fees until:2015-02-20",
]


# --- the corpus ---------------------------------------------------------------------------


def read_marker(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / MARKER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def wipe_data_dir(data_dir: Path) -> None:
    if data_dir.exists() and any(data_dir.iterdir()) and read_marker(data_dir) is None:
        raise SystemExit(
            f"{data_dir}: exists, is not empty and was not made by this benchmark (no "
            f"{MARKER}); it would be wiped for a build, so pass an empty or new --data-dir"
        )
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text(json.dumps({"complete": False}))


def wipe_database(url: str | None) -> None:
    """Drop and recreate the scratch database named in DATABASE_URL, if any (bench.scratch:
    its name must say bench)."""
    if url:
        scratch_database_recreate(url)
    # else the default SQLite file lives in the data dir, wiped with it


def subset_files(limit: int, folder: Path) -> list[Path]:
    """The first posts of each shared file, `limit` in all, in the files' proportions,
    written as JSON Lines under `folder` (a temporary dir, never the project)."""
    counts = []
    for path in FILES:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            counts.append(sum(1 for _ in lines))
    total = sum(counts)
    out = []
    for path, count in zip(FILES, counts, strict=True):
        take = min(count, round(limit * count / total))
        subset = folder / path.name.removesuffix(".gz")
        with gzip.open(path, "rt", encoding="utf-8") as lines, subset.open("w") as target:
            target.writelines(itertools.islice(lines, take))
        out.append(subset)
    return out


def corpus_build(limit: int) -> tuple[str, float, float]:
    """Import the posts and build a generation from them. Returns (name, import s, build s)."""
    from django.core.management import call_command
    from django.utils import timezone
    from tqdm import tqdm

    from search.models import IndexQueueEntry
    from search.services import generations as services

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="plaza-bench-search-") as tmp:
        paths = subset_files(limit, Path(tmp)) if limit else FILES
        for path in paths:
            print(f"importing {path.name}...", file=sys.stderr)
            call_command("import_posts", str(path), "--no-progress", stdout=sys.stderr)
    import_s = time.monotonic() - started

    started, build_started_at = time.monotonic(), timezone.now()
    bar = tqdm(desc="embedding", unit="post", file=sys.stderr, smoothing=0.1)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        generation = services.generation_build(progress=progress)
    finally:
        bar.close()
    # The import queued every post for the index worker, which this bench never runs; the
    # build embedded every visible post, so those entries are done.
    IndexQueueEntry.objects.filter(enqueued_at__lt=build_started_at).delete()
    return generation.name, import_s, time.monotonic() - started


# --- the paths timed ----------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) if values else None


def live_vectors(index) -> tuple:
    """Every live vector of an ml.index.SegmentedIndex and its id: (n, d) float32, (n,)."""
    import numpy as np

    index._maybe_reload()
    vectors, ids = [index._active.vectors()], [index._active.ids]
    for segment in index._sealed:
        live = ~segment.dead
        vectors.append(np.asarray(segment.vectors[live], np.float32))
        ids.append(segment.ids[live])
    return np.ascontiguousarray(np.vstack(vectors)), np.concatenate(ids)


def table_vectors(generation) -> tuple:
    """Every vector of a postgres generation's table and its id: (n, d) float32, (n,)."""
    import numpy as np
    from django.db import connection

    from search.backends.postgres import table_of

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT post_id, embedding::text FROM {table_of(generation)} ORDER BY post_id"
        )
        rows = cursor.fetchall()
    ids = np.fromiter((post_id for post_id, _ in rows), np.int64, len(rows))
    vectors = np.empty((len(rows), generation.dim), np.float32)
    for i, (_, literal) in enumerate(rows):  # '[0.0123,-0.04,...]'
        vectors[i] = np.asarray(literal[1:-1].split(","), np.float32)
    return vectors, ids


def baseline_corpus(generation, backend: str) -> tuple:
    """What the baseline searches, from the generation's own data: its vectors and their
    ids ((n, d) float32, (n,)) and a BM25Index (None before the first build)."""
    from search import indexes

    if backend == "postgres":
        from search.services.bm25 import bm25_build

        vectors, ids = table_vectors(generation)
        return vectors, ids, bm25_build()
    reader = indexes.reader_for(generation)
    vectors, ids = live_vectors(reader.index)
    return vectors, ids, reader.bm25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "var" / "bench-search")
    parser.add_argument(
        "--limit-posts", type=int, default=0, help="import only the first M posts (0: all)"
    )
    parser.add_argument("--queries", type=int, default=300, help="timed queries per path")
    reuse = parser.add_mutually_exclusive_group()
    reuse.add_argument("--reuse", action="store_true", help="use the built index, whatever M")
    reuse.add_argument("--rebuild", action="store_true", help="wipe and build again")
    args = parser.parse_args()
    if args.limit_posts < 0 or args.queries < 1:
        raise SystemExit("--limit-posts must be >= 0 and --queries >= 1")

    data_dir = args.data_dir.resolve()
    backend = os.environ.get("PLAZA_SEARCH_BACKEND", "faiss").strip().lower()
    marker = read_marker(data_dir)
    reusable = bool(marker and marker.get("complete"))
    if args.reuse and not reusable:
        raise SystemExit(f"--reuse: {data_dir} holds no built index; run without --reuse")
    built_with = marker.get("backend", "faiss") if marker else None  # older markers: faiss
    if args.reuse and built_with != backend:
        raise SystemExit(
            f"--reuse: {data_dir} was built with the {built_with} search backend, not "
            f"PLAZA_SEARCH_BACKEND={backend}; run without --reuse to build it again"
        )
    build = (
        args.rebuild
        or not reusable
        or built_with != backend
        or (not args.reuse and marker.get("limit_posts") != args.limit_posts)
    )
    if build:
        missing = [str(path) for path in FILES if not path.is_file()]
        if missing:
            raise SystemExit(
                f"shared data not found: {', '.join(missing)}. This benchmark needs the "
                "team's shared posts (../shared/data/posts/, or set PLAZA_SHARED_DATA)."
            )

    os.environ.update(
        PLAZA_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="config.settings",
        # No worker runs here: the import's index flushes stay in a broker under the data dir.
        CELERY_BROKER_URL="filesystem://",
        DJANGO_DEBUG="0",  # production's request path (no query log)
        DJANGO_ALLOWED_HOSTS="testserver,localhost,127.0.0.1",
    )
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-search")
    os.environ.setdefault("PLAZA_LOG_LEVEL", "WARNING")
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    if build:
        wipe_data_dir(data_dir)
        wipe_database(os.environ.get("DATABASE_URL"))

    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic
    import django

    django.setup()
    import faiss
    import numpy as np
    import torch
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token
    from sentence_transformers import SentenceTransformer

    from ml.registry import resolve_model
    from posts.models import Post
    from search import indexes
    from search.backends import search_backend
    from search.query import parse_query
    from search.selectors import search_posts

    call_command("migrate", verbosity=0, interactive=False)
    if search_backend().name != backend:  # settings read the same variable
        raise SystemExit(f"PLAZA_SEARCH_BACKEND={backend}: settings chose {search_backend().name}")
    import_s = build_s = None
    if build:
        name, import_s, build_s = corpus_build(args.limit_posts)
        marker = {
            "complete": True,
            "limit_posts": args.limit_posts,
            "generation": name,
            "posts": Post.objects.visible().count(),
            "backend": backend,
        }
        (data_dir / MARKER).write_text(json.dumps(marker))
    generation = indexes.live_generation(fresh=True)
    posts = Post.objects.visible().count()
    if generation is None or generation.name != marker["generation"] or posts != marker["posts"]:
        raise SystemExit(
            f"{data_dir}: the database and the index it was built with no longer agree "
            f"(live generation {generation and generation.name}, {posts} posts; built "
            f"{marker['generation']}, {marker['posts']} posts): pass --rebuild"
        )
    user, _ = get_user_model().objects.get_or_create(username="search-bench")
    token, _ = Token.objects.get_or_create(user=user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")

    # The baseline's objects: a plain SentenceTransformer of the same model, a flat FAISS
    # index over the generation's own vectors, and a BM25 build over the same posts.
    encoder = indexes.encoder_for(generation.embed_model)
    model = SentenceTransformer(
        resolve_model(generation.embed_model).target, device=encoder.device, local_files_only=True
    )
    vectors, vector_ids, bm25 = baseline_corpus(generation, backend)  # (n, d), (n,)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)

    def raw(query: str) -> int:
        text = parse_query(query).text
        vector = model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        _, positions = flat.search(vector, DEPTH)  # (1, DEPTH)
        dense = vector_ids[positions[0][positions[0] >= 0]]
        _, lexical = bm25.search(text, DEPTH) if bm25 is not None else (None, [])
        return len(set(dense.tolist()) | set(np.asarray(lexical).tolist()))

    stages: dict[str, list[float]] = {}

    def selector(query: str) -> int:
        results = search_posts(query=query, k=K)
        for stage, ms in results.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
        return len(results.hits)

    api_missing = None

    def api(query: str) -> int:
        response = client.get("/api/search", {"q": query, "k": K})
        if response.status_code != 200:
            raise RuntimeError(
                f"GET /api/search?q={query!r}: {response.status_code} {response.content[:300]!r}"
            )
        return len(response.json()["results"])

    probe = client.get("/api/search", {"q": QUERIES[0], "k": K})
    if probe.status_code == 404:
        api_missing = "GET /api/search answered 404: this checkout has no search API"
        print(api_missing, file=sys.stderr)
    paths = {"raw": raw, "selector": selector}
    if api_missing is None:
        paths["api"] = api

    hits: dict[str, list[int]] = {name: [] for name in paths}
    for query in QUERIES:  # warm-up: every query once through every path
        for run in paths.values():
            run(query)
    stages.clear()
    timings: dict[str, list[float]] = {name: [] for name in paths}
    by_kind: dict[str, list[float]] = {"plain": [], "operators": []}
    names = list(paths)
    for i in range(args.queries):
        query = QUERIES[i % len(QUERIES)]
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            found = paths[name](query)
            elapsed_ms = (time.perf_counter() - start) * 1000
            timings[name].append(elapsed_ms)
            hits[name].append(found)
            if name == "api":
                kind = "operators" if parse_query(query).has_filters else "plain"
                by_kind[kind].append(elapsed_ms)

    def stats(values: list[float]) -> dict:
        return {
            "n": len(values),
            "p50_ms": percentile(values, 50),
            "p95_ms": percentile(values, 95),
            "mean_ms": float(np.mean(values)) if values else None,
        }

    results = {name: stats(values) for name, values in timings.items()}
    raw_p50 = results["raw"]["p50_ms"]
    api_p50 = results.get("api", {}).get("p50_ms")
    goal_met = api_p50 is not None and api_p50 <= GOAL_API_P50_MS
    counted = hits.get("api", hits["selector"])
    zero_hits = sum(1 for n in counted if n == 0)
    empty = sorted({QUERIES[i % len(QUERIES)] for i, n in enumerate(counted) if n == 0})

    print(
        f"search latency, {backend} backend: {posts:,} posts ({generation.embed_model}, "
        f"{len(vectors):,} vectors), "
        f"k={K}, {args.queries} timed queries per path ({len(QUERIES)} distinct), "
        f"{connection.vendor}, {os.cpu_count()} cores, {encoder.device} with "
        f"{torch.get_num_threads()} torch threads, DEBUG off"
    )
    header = f"{'path':<62}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'p50 vs raw':>12}"
    print(header)
    print("-" * len(header))
    rows = [
        ("baseline: ST.encode + faiss IndexFlatIP + BM25, 100 deep", results["raw"]),
        ("ours: search_posts(query, k=10)", results["selector"]),
    ]
    if "api" in results:
        rows += [
            ("ours: GET /api/search (test client, token auth)", results["api"]),
            ("  queries without operators", stats(by_kind["plain"])),
            ("  queries with operators", stats(by_kind["operators"])),
        ]
    for name, row in rows:
        print(
            f"{name:<62}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{row['mean_ms']:>9.1f}"
            f"{row['p50_ms'] / raw_p50:>11.2f}x"
        )
    if api_missing:
        print(f"{'ours: GET /api/search':<62}{'n/a: ' + api_missing}")
    stage_p50 = {stage: percentile(values, 50) for stage, values in stages.items()}
    print(
        "search_posts stages, p50 ms: "
        + ", ".join(f"{stage} {ms:.1f}" for stage, ms in stage_p50.items())
    )
    print(
        f"goal API p50 <= {GOAL_API_P50_MS:g} ms: "
        + ("met" if goal_met else "NOT met" if api_p50 is not None else "unknown (no API)")
        + f"   queries with no result: {zero_hits}/{args.queries}"
        + (f" ({'; '.join(empty)})" if empty else "")
    )
    print(
        json.dumps(
            {
                "backend": backend,
                "posts": posts,
                "vectors": len(vectors),
                "queries": args.queries,
                "database": connection.vendor,
                "raw_p50_ms": raw_p50,
                "selector_p50_ms": results["selector"]["p50_ms"],
                "api_p50_ms": api_p50,
                "api_p95_ms": results.get("api", {}).get("p95_ms"),
                "api_vs_raw_p50": api_p50 / raw_p50 if api_p50 is not None else None,
                "results": results,
                "api_by_kind": {kind: stats(values) for kind, values in by_kind.items()},
                "selector_stages_p50_ms": stage_p50,
                "goal_api_p50_ms": GOAL_API_P50_MS,
                "goal_met": goal_met,
                "zero_hit_queries": zero_hits,
                "empty_queries": empty,
                "import_s": import_s,
                "build_s": build_s,
            }
        )
    )


if __name__ == "__main__":
    main()
