"""Plaza under load: the production server on PostgreSQL + Redis with real workers, driven
by locust over loopback, bounded in users and time.

    .venv/bin/python bench/load.py [--seconds 30] [--users 10] [--mix 6,2,2] [--posts 3000]
                                   [--port 8790] [--skip-throughput] [--skip-mixed]

What it sets up, all its own and on this machine only:
  - a scratch PostgreSQL database (DATABASE_URL, default
    postgres://postgres@127.0.0.1:5432/plaza_bench_load; its name must contain "bench": it
    is dropped and made again), Redis database 13 as the broker (CELERY_BROKER_URL), and the
    data dir var/bench-load (index, model cache), wiped first;
  - the demo posts and the first --posts of the shared data's posts (../shared/data/posts,
    or PLAZA_SHARED_DATA; without it, the demo posts alone), imported with import_posts;
  - the real Celery workers, as in platform/compose.yaml: one on `index,default` (the single
    index writer; it indexes the imported posts before any load starts) and one on `gpu`
    (answers, on the CPU here);
  - the production server, `gunicorn -c config/gunicorn.py` (uvicorn workers, DEBUG off,
    WEB_CONCURRENCY as set, else one per CPU), answering on 127.0.0.1:--port.

Then two phases, each a `locust --headless` run of bench/locustfile.py's users:
  1. Search throughput: `Searcher` users, each a closed loop (the next request as soon as
     the last answers): 1 connection, then 8, first all on one query (as `wrk` would), then
     on a rotating list of queries. The baseline is the 1-connection run in the same
     session: the ratio is requests/s at 8 over requests/s at 1.
  2. Mixed: --users users for --seconds, split by --mix (searchers, askers, posters):
     searches, answers asked and followed over their event stream to the end, new posts
     searched for until found (the freshness lag while under load).
Prints a table per phase (requests, errors, p50/p95 per endpoint), and one JSON line.
Answers' per-user limit is lifted for the run (PLAZA_ANSWERS_PER_MINUTE). The machine's
CPU and its other load change every figure: name them beside the figures.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scratch import scratch_database_name, scratch_database_recreate  # noqa: E402

VENV_BIN = Path(sys.executable).parent
SHARED_DATA = Path(os.environ.get("PLAZA_SHARED_DATA") or REPO.parent / "shared" / "data")
SHARED_POSTS = [
    SHARED_DATA / "posts" / "es-news-tweets.jsonl.gz",
    SHARED_DATA / "posts" / "us-airline-tweets.jsonl.gz",
]
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/plaza_bench_load")
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
DATA_DIR = REPO / "var" / "bench-load"
LOCUSTFILE = REPO / "bench" / "locustfile.py"
METRICS_TOKEN = secrets.token_urlsafe(24)  # the server's PLAZA_METRICS_TOKEN for this run
WATCH_S = 5
# What the mixed phase reads from /metrics as it runs (ops' figures and request counts).
WATCHED = (
    "plaza_index_vectors",
    "plaza_index_queued_changes",
    "plaza_index_freshness_lag_seconds",
    "plaza_queue_depth",
    "plaza_jobs",
    "django_http_requests_total_by_view_transport_method",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="each locust run's length")
    parser.add_argument("--users", type=int, default=10, help="users in the mixed phase")
    parser.add_argument("--mix", default="6,2,2", help="searchers,askers,posters")
    parser.add_argument("--posts", type=int, default=3000, help="shared posts to import")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-mixed", action="store_true")
    args = parser.parse_args()
    mix = [int(part) for part in args.mix.split(",")]
    if len(mix) != 3 or sum(mix) != args.users or min(mix) < 0:
        parser.error(f"--mix {args.mix}: three counts (searchers,askers,posters) adding up to "
                     f"--users {args.users}")  # fmt: skip
    if not 5 <= args.seconds <= 600:
        parser.error("--seconds: between 5 and 600 (the run is bounded)")
    if not 1 <= args.users <= 64:
        parser.error("--users: between 1 and 64 (this is one machine's loopback)")

    env = _environment()
    processes: list[subprocess.Popen] = []
    try:
        token = _prepare(env, args.posts)
        processes += _start_workers(env)
        _wait_indexed(env)
        processes.append(_start_server(env, args.port))
        host = f"http://127.0.0.1:{args.port}"
        _wait_healthy(host)
        _locust(host, token, 8, 5, ["Searcher"])  # warm-up: each worker's first requests
        _warm_answers(host, token)
        results: dict = {"cpu": _cpu_name(), "cores": os.cpu_count()}
        if not args.skip_throughput:
            results["throughput"] = _throughput(host, token, args.seconds)
        if not args.skip_mixed:
            results["mixed"] = _mixed(host, token, args.seconds, mix)
    finally:
        for process in reversed(processes):
            _stop(process)
    print(json.dumps(results))
    return 0


# --- set-up -------------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    if not DATABASE_URL.startswith("postgres"):
        raise SystemExit(f"DATABASE_URL={DATABASE_URL}: use a scratch PostgreSQL database "
                         "whose name contains 'bench' (it is dropped)")  # fmt: skip
    scratch_database_name(DATABASE_URL)  # refused unless its name says bench
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),  # this checkout's code, whichever the venv was installed from
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "PLAZA_DATA_DIR": str(DATA_DIR),
        "PLAZA_ANSWERS_PER_MINUTE": "100000",
        "PLAZA_METRICS_TOKEN": METRICS_TOKEN,
    }


def _manage(env: dict, *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=REPO, env=env, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


def _prepare(env: dict, posts: int) -> str:
    """A fresh database, broker and data dir, the posts imported; returns a staff token."""
    scratch_database_recreate(DATABASE_URL)
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True)
    _say("migrating, collecting static files, importing posts...")
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "collectstatic", "--noinput", "-v", "0")
    _manage(env, "import_posts", "posts/demo/posts.jsonl", "--source", "demo", "--no-progress")
    with tempfile.TemporaryDirectory(prefix="plaza-bench-load-") as tmp:
        for path in _shared_subset(posts, Path(tmp)):
            _manage(env, "import_posts", str(path), "--no-progress")
    _manage(env, "ensure_admin", "--password-file", str(DATA_DIR / "admin-password.txt"))
    printed = _manage(env, "drf_create_token", "admin")
    return re.search(r"[0-9a-f]{40}", printed).group(0)


def _shared_subset(limit: int, folder: Path) -> list[Path]:
    """The first `limit` shared posts, half from each file (none without the shared data)."""
    present = [path for path in SHARED_POSTS if path.exists()]
    if not present or limit <= 0:
        _say(f"no shared posts ({SHARED_DATA}): the demo posts only")
        return []
    out = []
    for path in present:
        subset = folder / path.name.removesuffix(".gz")
        with gzip.open(path, "rt", encoding="utf-8") as lines, subset.open("w") as target:
            target.writelines(itertools.islice(lines, limit // len(present)))
        out.append(subset)
    return out


def _start_workers(env: dict) -> list[subprocess.Popen]:
    celery = str(VENV_BIN / "celery")
    logs = DATA_DIR / "logs"
    logs.mkdir(exist_ok=True)
    workers = []
    for name, queues in (("index", "index,default"), ("gpu", "gpu")):
        command = [celery, "-A", "config", "worker", "-Q", queues, "-c", "1",
                   "-n", f"{name}@%h", "-l", "info"]  # fmt: skip
        log = (logs / f"worker-{name}.log").open("w")
        workers.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log))
    return workers


def _wait_indexed(env: dict, timeout_s: float = 900) -> None:
    """Until the index worker has indexed every imported post."""
    code = (
        "from search.selectors import index_figures; import json; "
        "f = index_figures(); print(json.dumps({'queued': f['queued'], "
        "'vectors': (f['generation'] or {}).get('vectors')}))"
    )
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        figures = json.loads(_manage(env, "shell", "-c", code).strip().splitlines()[-1])
        if figures["queued"] == 0 and figures["vectors"]:
            _say(f"indexed: {figures['vectors']} vectors in {time.monotonic() - started:.0f} s")
            return
        time.sleep(5)
    raise SystemExit(f"the index worker did not index the posts in {timeout_s:.0f} s; "
                     f"see {DATA_DIR / 'logs'}")  # fmt: skip


def _start_server(env: dict, port: int) -> subprocess.Popen:
    log = (DATA_DIR / "logs" / "gunicorn.log").open("w")
    command = [
        str(VENV_BIN / "gunicorn"),
        "-c",
        "config/gunicorn.py",
        "--access-logfile",
        "/dev/null",
    ]
    server_env = {**env, "PLAZA_BIND": f"127.0.0.1:{port}"}
    return subprocess.Popen(command, cwd=REPO, env=server_env, stdout=log, stderr=log)


def _wait_healthy(host: str, timeout_s: float = 120) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            with urllib.request.urlopen(f"{host}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{host}/healthz did not answer in {timeout_s:.0f} s")


def _warm_answers(host: str, token: str, timeout_s: float = 300) -> None:
    """One answer asked and waited for, so the gpu worker has loaded its model."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    body = json.dumps({"q": "What do people say about lost luggage?"}).encode()
    request = urllib.request.Request(f"{host}/api/answers", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        url = json.loads(response.read())["url"]
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            status = json.loads(response.read())["status"]
        if status in ("done", "failed"):
            _say(f"warm-up answer {status} in {time.monotonic() - started:.0f} s")
            return
        time.sleep(1)
    raise SystemExit(f"the warm-up answer did not finish in {timeout_s:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the runs -----------------------------------------------------------------------------


def _locust(host: str, token: str, users: int, seconds: int, classes: list[str],
            extra_env: dict | None = None, watch=None) -> dict[str, dict]:  # fmt: skip
    """One headless locust run; {entry name: figures} from its stats CSV. `watch()` is
    called every WATCH_S seconds while it runs."""
    with tempfile.TemporaryDirectory(prefix="plaza-locust-") as tmp:
        prefix = Path(tmp) / "run"
        command = [
            str(VENV_BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--host", host,
            "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "30",
            "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", *classes,
        ]  # fmt: skip
        env = {**os.environ, "PLAZA_LOAD_TOKEN": token, **(extra_env or {})}
        with (DATA_DIR / "logs" / "locust.log").open("a") as log:
            run = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
            deadline = time.monotonic() + seconds + 120
            while run.poll() is None:
                if time.monotonic() > deadline:
                    run.kill()
                    raise SystemExit(f"locust ran past {seconds + 120} s")
                if watch is not None:
                    watch()
                time.sleep(WATCH_S)
        with open(f"{prefix}_stats.csv", newline="") as stats:
            rows = list(csv.DictReader(stats))
    return {
        row["Name"]: {
            "requests": int(row["Request Count"]),
            "errors": int(row["Failure Count"]),
            "per_s": round(float(row["Requests/s"]), 1),
            "p50_ms": _number(row["50%"]),
            "p95_ms": _number(row["95%"]),
            "p99_ms": _number(row["99%"]),
        }
        for row in rows
    }


def _nothing(stats: dict) -> dict:
    raise SystemExit(f"no search answered in the run: {stats}; see {DATA_DIR / 'logs'}")


def _number(value: str) -> float | None:
    return None if value in ("", "N/A") else float(value)


def _throughput(host: str, token: str, seconds: int) -> dict:
    out = {}
    for queries in ("same", "varied"):
        runs = {}
        for users in (1, 8):
            _say(f"search throughput: {users} connection(s), {queries} queries, {seconds} s")
            stats = _locust(host, token, users, seconds, ["Searcher"],
                            {"PLAZA_LOAD_QUERIES": queries})  # fmt: skip
            runs[users] = stats.get("GET /api/search") or _nothing(stats)
        ratio = runs[8]["per_s"] / runs[1]["per_s"] if runs[1]["per_s"] else None
        out[queries] = {"1": runs[1], "8": runs[8], "ratio_8_to_1": _round(ratio, 2)}
        print(f"\nsearch, {queries} queries (closed loop, {seconds} s each)")
        print("| connections | requests | errors | requests/s | p50 ms | p95 ms | p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for users, run in runs.items():
            print(f"| {users} | {run['requests']} | {run['errors']} | {run['per_s']} | "
                  f"{run['p50_ms']} | {run['p95_ms']} | {run['p99_ms']} |")  # fmt: skip
        print(f"8 connections / 1 connection: {_round(ratio, 2)}x requests/s")
    return out


def _mixed(host: str, token: str, seconds: int, mix: list[int]) -> dict:
    searchers, askers, posters = mix
    _say(f"mixed load: {searchers} searchers, {askers} askers, {posters} posters, {seconds} s")
    env = {"PLAZA_LOAD_MIX": f"{searchers},{askers},{posters}"}
    samples: list[dict] = []
    stats = _locust(host, token, sum(mix), seconds, ["Searcher", "Asker", "Poster"], env,
                    watch=lambda: samples.append(_scrape(host)))  # fmt: skip
    print(f"\nmixed load: {searchers} searchers, {askers} askers, {posters} posters, "
          f"{seconds} s")  # fmt: skip
    print("| entry | requests | errors | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    for name, run in stats.items():
        print(f"| {name} | {run['requests']} | {run['errors']} | {run['p50_ms']} | "
              f"{run['p95_ms']} |")  # fmt: skip
    print(f"\n/metrics while it ran (every {WATCH_S} s; first, middle, last sample):")
    for sample in _first_middle_last(samples):
        print("  " + ", ".join(f"{name} {value:g}" for name, value in sample.items()))
    return {**stats, "metrics_samples": samples}


def _scrape(host: str) -> dict[str, float]:
    """The watched series of one /metrics scrape, each summed over its labels, with the
    answers' and drafts' jobs by status kept apart."""
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(
        f"{host}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created") or not sample.name.startswith(WATCHED):
                continue
            name = sample.name
            if name == "plaza_jobs":
                name = f"jobs[{sample.labels.get('kind')},{sample.labels.get('status')}]"
            elif name == "plaza_queue_depth":
                name = f"queue[{sample.labels.get('queue')}]"
            out[name] = out.get(name, 0.0) + sample.value
    return out


def _first_middle_last(samples: list) -> list:
    if len(samples) <= 3:
        return samples
    return [samples[0], samples[len(samples) // 2], samples[-1]]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
