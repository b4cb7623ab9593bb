"""Rebuild rate fanned out over Celery workers: 1 worker against 2, on each search backend.

    .venv/bin/python bench/reindex.py [--posts N] [--backends faiss,postgres] [--workers 1,2]
                                      [--chunk 500]

Imports the first N of the shared posts (../shared/data/posts/, both files in their
proportions; default 4,000) into a scratch PostgreSQL database (DATABASE_URL, whose name
must contain "bench"; default: platform/postgres.sh's server, database plaza_bench_reindex)
and, for each backend and worker count W, starts W Celery worker processes on a Redis
broker (PLAZA_BENCH_REDIS_URL, default redis://127.0.0.1:6379/8): the first on
`index,build,default`, the others on `build` (so with faiss there is still one index
writer). Then, in this process, `generation_build_fan_out()` splits the rebuild into
chunks of --chunk posts and this process follows the generation until it is live.

Prints, per backend and W: how many chunks each worker took, the chunk phase (encode +
write, first chunk sent to last chunk done) in posts/s, the finish (faiss: the one writer
adds the chunks' vectors and builds BM25; postgres: HNSW and GIN over the filled table),
the whole rebuild in posts/s,
and W=2's speed-up over W=1 on the chunk phase; then one JSON line. Every worker is on
this machine, so the cores are shared: each of W workers gets cores / W torch threads
(OMP_NUM_THREADS, unless set), as W hosts would each have their own; a worker loads its
encoder at its first chunk, inside the timed phase, as a freshly started worker does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scratch import scratch_database_recreate  # noqa: E402
from bench.search_api import FILES, subset_files  # noqa: E402


def postgres_url() -> str:
    server = subprocess.run(
        ["bash", "platform/postgres.sh"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    return server.rsplit("/", 1)[0] + "/plaza_bench_reindex"


def start_workers(count: int, env: dict, logs: Path) -> list[subprocess.Popen]:
    workers = []
    env = {**env, "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS") or str(threads_for(count))}
    for n in range(count):
        queues = "index,build,default" if n == 0 else "build"
        log = (logs / f"worker-{n}.log").open("w")
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    queues,
                    "-c",
                    "1",
                    "-n",
                    f"bench{n}@%h",
                    "-l",
                    "info",
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        )
    return workers


def threads_for(count: int) -> int:
    return max(1, (os.cpu_count() or 1) // count)


def wait_ready(app, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= count:
            return
    raise SystemExit(f"{count} workers did not answer a ping within {timeout:.0f} s")


def stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--backends", default="faiss,postgres")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--chunk", type=int, default=500, help="posts per chunk")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    counts = [int(w) for w in args.workers.split(",") if w]
    missing = [str(path) for path in FILES if not path.is_file()]
    if missing:
        raise SystemExit(f"shared data not found: {', '.join(missing)} (../shared/data/posts/)")
    url = os.environ.get("DATABASE_URL") or postgres_url()
    broker = os.environ.get("PLAZA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                  if line.startswith("Model name")), "?")  # fmt: skip
    flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in cpu)
    print(f"machine: {model} ({os.cpu_count()} cores; {flags})")
    results: dict[str, dict] = {}
    for backend in backends:
        for count in counts:
            results.setdefault(backend, {})[str(count)] = run_one(
                backend, count, args.posts, args.chunk, url, broker
            )
            row = results[backend][str(count)]
            print(
                f"{backend:8} workers={count} x {threads_for(count)} threads: chunks "
                f"{row['chunk_posts_per_s']:7.1f} posts/s "
                f"({row['chunk_s']:.1f} s), finish {row['finish_s']:.1f} s, whole "
                f"{row['posts_per_s']:7.1f} posts/s ({row['total_s']:.1f} s, "
                f"{row['posts']} posts); chunks per worker {row['chunks_per_worker']}",
                flush=True,
            )
    print()
    print("| backend | workers | chunk phase posts/s | finish s | rebuild posts/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for backend, rows in results.items():
        one = rows.get("1", {}).get("chunk_posts_per_s")
        for count, row in rows.items():
            ratio = f"{row['chunk_posts_per_s'] / one:.2f}x" if one else "-"
            print(f"| {backend} | {count} | {row['chunk_posts_per_s']:.1f} | "
                  f"{row['finish_s']:.1f} | {row['posts_per_s']:.1f} | {ratio} |")  # fmt: skip
    print(json.dumps({"machine": model, "posts": args.posts, "results": results}))


def run_one(backend: str, count: int, posts: int, chunk: int, url: str, broker: str) -> dict:
    """One rebuild of `posts` posts on `backend` with `count` workers, in a child process
    of its own (each backend's settings are read at start)."""
    with tempfile.TemporaryDirectory(prefix="plaza-bench-reindex-") as tmp:
        out = Path(tmp) / "result.json"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": broker,
            "PLAZA_SEARCH_BACKEND": backend,
            "PLAZA_DATA_DIR": str(Path(tmp) / "data"),
            "PLAZA_INDEX_BUILD_CHUNK": str(chunk),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PLAZA_LOG_LEVEL": "WARNING",
        }
        env.pop("CELERY_RESULT_BACKEND", None)
        subprocess.run(
            [sys.executable, __file__, "--child", str(count), str(posts), str(out)],
            env=env, check=True, cwd=REPO,
        )  # fmt: skip
        return json.loads(out.read_text())


def child(count: int, posts: int, out: Path) -> None:
    scratch_database_recreate(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from config.celery import QUEUES, app
    from search.models import IndexBuildChunk, IndexGeneration, IndexQueueEntry
    from search.services.generations import generation_build_fan_out

    data = Path(os.environ["PLAZA_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as tmp:
        for path in subset_files(posts, Path(tmp)):
            call_command("import_posts", str(path), "--no-progress", verbosity=0)
    IndexQueueEntry.objects.all().delete()  # the rebuild alone is measured
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_declare(queue=queue, durable=True)
            conn.default_channel.queue_purge(queue)
    workers = start_workers(count, dict(os.environ), data)
    try:
        wait_ready(app, count)
        started = timezone.now()
        t0 = time.monotonic()
        generation = generation_build_fan_out()
        while True:
            generation.refresh_from_db()
            if generation.state == IndexGeneration.State.LIVE:
                break
            if generation.state == IndexGeneration.State.FAILED:
                raise SystemExit(f"the rebuild failed: {generation.error}")
            if any(worker.poll() is not None for worker in workers):
                raise SystemExit(f"a worker exited; logs in {data}")
            time.sleep(0.2)
        total = time.monotonic() - t0
        last_chunk = max(
            IndexBuildChunk.objects.filter(generation=generation).values_list("done_at", flat=True)
        )
        chunk_s = (last_chunk - started).total_seconds()
        result = {
            "posts": generation.posts_done,
            "chunks": generation.chunks_total,
            "chunk_s": round(chunk_s, 2),
            "chunk_posts_per_s": round(generation.posts_done / chunk_s, 1),
            "finish_s": round(total - chunk_s, 2),
            "total_s": round(total, 2),
            "posts_per_s": round(generation.posts_done / total, 1),
        }
    finally:
        stop(workers)
    # Which worker took how many chunks (each logs the tasks it finished).
    result["chunks_per_worker"] = [
        sum(
            "search.tasks.generation_build_chunk" in line and "succeeded" in line
            for line in (data / f"worker-{n}.log").read_text().splitlines()
        )
        for n in range(count)
    ]
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
