"""Freshness: seconds from a post's write through the API until search returns it.

    .venv/bin/python bench/freshness.py [--posts 200] [--rate 5] [--data-dir var/bench-freshness]
                                        [--server runserver|gunicorn] [--search api|in-process]
                                        [--corpus PATH ...] [--pollers 2] [--timeout 60]

Sets up a whole Plaza in its own data dir (wiped at start): migrates, makes a user with a
token and the posts add/change permissions, imports the demo posts as background corpus,
starts a web server and a Celery worker (`-Q default,index,gpu,build -c 1`) as subprocesses
and waits until the worker has indexed the corpus and search finds it. Then a producer
thread writes one post per `POST /api/posts` at a steady rate, and a poller sends each
pending post's own text to `GET /api/search?q=...&k=10` until the post comes back. A
post's lag runs from the moment its 201 arrived to the moment a search response holding
it arrived. The goal is p95 <= 5 s.

Searches cost CPU the worker needs, so the poller searches a post again only when it
could have become findable since its last miss (the index changed, and the post is in
it), and reports its resolution: for each post, the time between the last moment it was
known not to be findable and the search that found it. When the poller falls behind
(few cores, high --rate), the lags are upper bounds and it says so.

The search backend is the site's (PLAZA_SEARCH_BACKEND), and so is what "the index
changed" means: with `faiss` the live generation's vector manifest or its BM25 build (a
post is findable once it is in either); with `postgres` the generation's table, where a
post is findable by both methods once its row commits (BM25 is scored in SQL: there are
no BM25 builds to count).

Baseline, same process: the round trip of the same search for posts indexed long ago (the
demo posts), i.e. what the poller would measure if indexing were instant.

SQLite and the filesystem broker by default (both under the data dir). DATABASE_URL and
CELERY_BROKER_URL from the environment are honoured; the bench wipes what it uses, so it
only accepts a scratch database whose name contains "bench", e.g.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/plaza_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/freshness.py

    DATABASE_URL=postgres://postgres@127.0.0.1:5433/plaza_bench_fresh \\
    PLAZA_SEARCH_BACKEND=postgres CELERY_BROKER_URL=redis://127.0.0.1:6379/7 \\
    .venv/bin/python bench/freshness.py --data-dir var/bench-freshness-pg

`--search in-process` calls search.selectors.search_posts in this process instead of the
HTTP API (for a checkout without `GET /api/search`). Logs: <data-dir>/web.log, worker.log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads from a hub

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scratch import scratch_database_recreate  # noqa: E402

DEMO_POSTS = REPO / "posts" / "demo" / "posts.jsonl"
MARKER = ".plaza-bench-freshness"  # a data dir holding this may be wiped
GOAL_P95_S = 5.0
K = 10
BASELINE_QUERIES = 20
RESOLUTION_WARN_S = 1.0  # a coarser poller makes the lags upper bounds worth a note

# Realistic posts, Spanish and English; every post ends with a token no other post has.
TEMPLATES = [
    (
        "es",
        "Corte de tráfico en la calle {street_es} por obras del metro hasta las {hour} horas, "
        "buscad rutas alternativas #{token}",
    ),
    (
        "es",
        "Alerta amarilla por calor en {city_es}: máximas de {temp} grados este fin de semana. "
        "Agua, sombra y nada de deporte a mediodía #{token}",
    ),
    (
        "es",
        "El ayuntamiento de {city_es} abre el plazo de las becas de comedor; las solicitudes "
        "se presentan hasta el {day} de {month_es} #{token}",
    ),
    (
        "es",
        "Victoria por {a} a {b} en el derbi de {city_es} y el equipo duerme líder una semana más "
        "#{token}",
    ),
    (
        "es",
        "Huelga de autobuses en {city_es} el próximo {day} de {month_es}: servicios mínimos del "
        "{pct} por ciento en hora punta #{token}",
    ),
    (
        "es",
        "Hoy presentamos en la biblioteca de {city_es} el libro de poemas de una vecina de "
        "{age} años, entrada libre #{token}",
    ),
    (
        "es",
        "El precio del aceite de oliva sube otro {pct} por ciento en {month_es} y los bares de "
        "{city_es} ya lo notan en la tostada #{token}",
    ),
    (
        "es",
        "Rescatan a {a} senderistas perdidos en la sierra cerca de {city_es} tras una noche de "
        "niebla; todos están bien #{token}",
    ),
    (
        "en",
        "Flight {flight} to {city_en} is delayed {minutes} minutes at the gate, the crew says "
        "weather upstream is the holdup #{token}",
    ),
    (
        "en",
        "The farmers market in {city_en} moves to Saturdays from {month_en}, same spot by the "
        "river, more stalls promised #{token}",
    ),
    (
        "en",
        "New protected bike lanes on {street_en} open this week and the council promises {km} more "
        "kilometres by autumn #{token}",
    ),
    (
        "en",
        "Power cut across the east side of {city_en} since {hour} o'clock, the utility expects "
        "it back within two hours #{token}",
    ),
    (
        "en",
        "Our school robotics team from {city_en} just qualified for nationals with a robot "
        "built from {a} old vacuum cleaners #{token}",
    ),
    (
        "en",
        "Rent in {city_en} is up {pct} percent on last year according to the new city report, "
        "and wages are not keeping pace #{token}",
    ),
    (
        "en",
        "Lost dog near {street_en} in {city_en}, brown terrier answering to Biscuit, please share "
        "if you see him #{token}",
    ),
    (
        "en",
        "The library in {city_en} will stay open until {hour} on weekdays during exam season, "
        "free coffee included #{token}",
    ),
]
SLOTS = {
    "street_es": ["Alcalá", "Mayor", "Gran Vía", "Serrano", "Colón"],
    "street_en": ["Main Street", "Elm Avenue", "Harbor Road", "Fifth Avenue", "Market Street"],
    "city_es": ["Sevilla", "Valencia", "Bilbao", "Zaragoza", "Málaga", "Puebla", "Rosario"],
    "city_en": ["Boston", "Denver", "Chicago", "Seattle", "Austin", "Atlanta", "Portland"],
    "month_es": ["marzo", "abril", "mayo", "junio", "octubre"],
    "month_en": ["March", "April", "May", "June", "October"],
}


def post_text(index: int, run: str, rng: random.Random) -> tuple[str, str]:
    """(lang, text) of the index-th post of this run; the token makes the text unique."""
    lang, template = TEMPLATES[index % len(TEMPLATES)]
    values = {name: rng.choice(choices) for name, choices in SLOTS.items()}
    values.update(
        hour=rng.randint(6, 22),
        temp=rng.randint(36, 44),
        day=rng.randint(1, 28),
        a=rng.randint(1, 4),
        b=rng.randint(0, 3),
        flight=f"{rng.choice(['UA', 'B6', 'AA', 'DL'])}{rng.randint(100, 2999)}",
        minutes=rng.choice([25, 40, 55, 90]),
        km=rng.randint(3, 30),
        pct=rng.randint(5, 40),
        age=rng.randint(70, 98),
        token=f"pz{run}{index:05d}",
    )
    return lang, template.format(**values)


# --- set-up -------------------------------------------------------------------------------


def wipe_data_dir(data_dir: Path) -> None:
    if data_dir.exists() and any(data_dir.iterdir()) and not (data_dir / MARKER).exists():
        raise SystemExit(
            f"{data_dir}: exists, is not empty and was not made by this benchmark "
            f"(no {MARKER}); the bench wipes its data dir, so pass an empty or new --data-dir"
        )
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("made by bench/freshness.py; wiped at each run\n")


def wipe_database(url: str | None) -> str:
    """Drop and recreate the scratch database named in DATABASE_URL (bench.scratch: its
    name must say bench); returns its vendor."""
    if not url:
        return "sqlite"  # under the data dir, wiped with it
    return scratch_database_recreate(url)


def purge_broker() -> str:
    """Empty Plaza's queues on the configured broker (files under the data dir are new)."""
    from django.conf import settings

    from config.celery import QUEUES, app

    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        return "filesystem"
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_declare(queue=queue, durable=True)
            conn.default_channel.queue_purge(queue)
    return urlparse(url).scheme


def django_setup(corpus: list[Path]) -> tuple[str, int, str]:
    """Empty the broker's queues, migrate, make the bench user and its token, import the
    corpus (which queues its index flush). Returns (token, corpus posts, broker)."""
    import django

    django.setup()
    broker = purge_broker()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.core.management import call_command
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from posts.models import Post

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user(username="freshness-bench")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="posts", codename__in=["add_post", "change_post"]
        )
    )
    token = Token.objects.create(user=user).key
    for path in corpus:
        call_command("import_posts", str(path), "--source", "corpus", "--no-progress", stdout=Log())
    posts = Post.objects.count()
    connections.close_all()
    return token, posts, broker


class Log:
    """A stdout for call_command that keeps its lines out of the report."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """The web server and the worker, each in its own session so a kill takes its children."""

    def __init__(self, env: dict, data_dir: Path):
        self.env, self.data_dir = env, data_dir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], **env: str) -> None:
        log = (self.data_dir / f"{name}.log").open("w")
        self.running[name] = subprocess.Popen(
            command,
            cwd=REPO,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise SystemExit(
                    f"the {name} process exited ({process.returncode}); "
                    f"its log ends:\n{self.log_tail(name)}"
                )

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            return (self.data_dir / f"{name}.log").read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.running.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(what: str, ready, processes: Processes, timeout: float) -> float:
    """Poll `ready()` until true; returns the seconds it took."""
    start = time.monotonic()
    while True:
        processes.check()
        if ready():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise SystemExit(
                f"timed out after {timeout:.0f} s waiting for {what}; logs: "
                f"{processes.data_dir}/web.log, worker.log. Worker log ends:\n"
                f"{processes.log_tail('worker')}"
            )
        time.sleep(0.5)


def bm25_builds() -> bool:
    """Whether the configured backend searches BM25 builds (faiss) or scores BM25 in SQL
    over the rows it writes (postgres)."""
    from django.conf import settings

    return settings.PLAZA_SEARCH_BACKEND == "faiss"


def corpus_indexed() -> bool:
    from django.db import connection

    from search.models import IndexGeneration, IndexQueueEntry

    try:
        live = IndexGeneration.objects.filter(state=IndexGeneration.State.LIVE).first()
        return (
            live is not None
            and (live.bm25_built_at is not None or not bm25_builds())
            and not IndexQueueEntry.objects.exists()
        )
    finally:
        connection.close()


# --- search -------------------------------------------------------------------------------


class SearchMissing(SystemExit):
    pass


class Searcher:
    """One search, as the API or in this process; returns the result rows as dicts."""

    def __init__(self, mode: str, base_url: str, token: str):
        self.mode, self.base_url = mode, base_url
        self.headers = {"Authorization": f"Token {token}"}
        self.local = threading.local()

    def session(self):
        import requests

        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers.update(self.headers)
        return self.local.session

    def __call__(self, query: str, k: int = K) -> list[dict]:
        if self.mode == "in-process":
            from search.selectors import search_posts

            hits = search_posts(query=query, k=k).hits
            return [{"id": h.post.pk, "external_id": h.post.external_id} for h in hits]
        response = self.session().get(
            f"{self.base_url}/api/search", params={"q": query, "k": k}, timeout=60
        )
        if response.status_code == 404 and "results" not in response.text:
            raise SearchMissing(
                "GET /api/search answered 404: this checkout has no search API yet. "
                "Pass --search in-process to time search.selectors.search_posts in this "
                "process instead."
            )
        response.raise_for_status()
        return response.json()["results"]


def found_in(results: list[dict], post_id: int, external_id: str) -> bool:
    return any(r.get("id") == post_id or r.get("external_id") == external_id for r in results)


class IndexState:
    """What the live generation's searches draw their candidates from, and whether it
    changed. faiss: its vector manifest and its current BM25 build (files). postgres: its
    table (`search_pg_<id>`), whose row count and newest row version (xmin) any committed
    insert, update or delete moves. A post that a search missed cannot turn up until that
    changes: the poller searches it again only then, which keeps its load (and the
    worker's competition for the CPU) down without hiding the moment a post becomes
    findable."""

    def __init__(self, folder: Path, table: str | None = None):
        self.folder = folder
        self.table = table  # postgres: the generation's table; None with faiss

    def token(self) -> tuple:
        """(the index's state, the BM25 build current: None with postgres)."""
        if self.table is not None:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*), max(xmin::text::bigint) FROM {self.table}")
                return tuple(cursor.fetchone()), None
        from ml.index import MANIFEST
        from search.indexes import bm25_current

        try:
            stat = os.stat(self.folder / "vectors" / MANIFEST)
            vectors = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            vectors = None
        return vectors, bm25_current(self.folder)

    def unindexed(self, posts: list[Written], current: tuple) -> set[int]:
        """The ids of `posts` that cannot be findable with the index in state `current`.
        faiss: still queued (a flush deletes a post's entry after its commit) and no BM25
        build made since the post was written. postgres: no row in the table yet."""
        from django.db import connection

        ids = [p.post_id for p in posts]
        if self.table is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT post_id FROM {self.table} WHERE post_id = ANY(%s)", [ids])
                return set(ids) - {post_id for (post_id,) in cursor.fetchall()}
        from search.models import IndexQueueEntry

        queued = set(
            IndexQueueEntry.objects.filter(post_id__in=ids).values_list("post_id", flat=True)
        )
        return {p.post_id for p in posts if p.post_id in queued and current[1] == p.bm25_before}

    @classmethod
    def live(cls) -> IndexState:
        from django.db import connection

        from search.indexes import generation_folder
        from search.models import IndexGeneration

        try:
            live = IndexGeneration.objects.get(state=IndexGeneration.State.LIVE)
            if bm25_builds():
                return cls(generation_folder(live.name))
            from search.backends.postgres import table_of

            return cls(generation_folder(live.name), table_of(live))
        finally:
            connection.close()


# --- the run ------------------------------------------------------------------------------


@dataclass
class Written:
    index: int
    post_id: int
    external_id: str
    lang: str
    text: str
    written_at: float  # monotonic, when the 201 arrived
    seen_state: tuple  # IndexState token before the write, then at the last missing search
    bm25_before: str | None  # the BM25 build current before the write
    found_at: float | None = None  # when the first search response holding it arrived
    hidden_at: float | None = None  # the last moment it is known not to have been findable
    searches: int = 0

    @property
    def window_s(self) -> float:
        """How much of the lag is the poller's resolution: the post became findable after
        `hidden_at` (a search missed it, or the poller saw that it could not be found yet)
        and before the finding search came back."""
        return self.found_at - max(self.written_at, self.hidden_at or self.written_at)


def produce(
    args, base_url: str, token: str, run: str, state: IndexState, pending: list, lock, stop, errors
) -> None:
    """Write args.posts posts, one per request, at args.rate per second."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    rng = random.Random(run)
    start = time.monotonic()
    for i in range(args.posts):
        delay = start + i / args.rate - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        lang, text = post_text(i, run, rng)
        external_id = f"fresh-{run}-{i:05d}"
        body = {
            "posts": [
                {
                    "id": external_id,
                    "author": "freshness_bench",
                    "text": text,
                    "created_at": datetime.now(UTC).isoformat(),
                    "lang": lang,
                }
            ]
        }
        before = state.token()
        try:
            response = session.post(f"{base_url}/api/posts", json=body, timeout=60)
        except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
            errors.append(f"post {i}: {exc!r}")
            continue
        written_at = time.monotonic()
        if response.status_code != 201:
            errors.append(f"post {i}: HTTP {response.status_code} {response.text[:200]}")
            continue
        post_id = response.json()["posts"][0]["id"]
        with lock:
            pending.append(
                Written(i, post_id, external_id, lang, text, written_at, before, before[1])
            )


def poll(
    search: Searcher,
    state: IndexState,
    pending: list,
    lock,
    producer: threading.Thread,
    timeout: float,
    pollers: int,
):
    """Search pending posts by their text, oldest first, on `pollers` threads, until each is
    found or `timeout` s old. A post is searched only when it could have become findable
    since it was last missed: the index changed (IndexState.token), and the post is in it
    (IndexState.unindexed)."""
    from concurrent.futures import ThreadPoolExecutor

    def probe(post: Written) -> None:
        seen = state.token()  # before sending: a change during the search counts as unseen
        sent = time.monotonic()
        results = search(post.text)
        post.searches += 1
        if found_in(results, post.post_id, post.external_id):
            post.found_at = time.monotonic()
        else:
            post.seen_state, post.hidden_at = seen, sent

    done: list[Written] = []
    sweeps = 0
    pool = ThreadPoolExecutor(pollers, thread_name_prefix="poller")
    try:
        while producer.is_alive() or pending:
            with lock:
                batch = list(pending)
            checked = time.monotonic()
            current = state.token()
            unindexed = state.unindexed(batch, current) if batch else set()
            due = []
            for post in batch:
                if post.seen_state == current or post.post_id in unindexed:
                    post.hidden_at = checked  # cannot have been findable at `checked`
                else:
                    due.append(post)
            if due:
                sweeps += 1
                list(pool.map(probe, due))
            now = time.monotonic()
            finished = [p for p in batch if p.found_at is not None or now - p.written_at > timeout]
            if finished:
                with lock:
                    for post in finished:
                        pending.remove(post)
                done += finished
            if not due:
                time.sleep(0.02)
    finally:  # on Ctrl-C too: drop the searches not started
        pool.shutdown(wait=False, cancel_futures=True)
    return sorted(done, key=lambda p: p.index), sweeps


def percentile(values: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) if values else None


def summary(lags: list[float]) -> dict:
    return {
        "n": len(lags),
        "p50_s": percentile(lags, 50),
        "p95_s": percentile(lags, 95),
        "max_s": max(lags) if lags else None,
    }


def worker_counts(log: str, bm25_builds: bool) -> dict:
    """Flushes and BM25 rebuilds in the worker's log (rebuilds None: postgres has none)."""
    return {
        "flushes": log.count("index flush:"),
        "bm25_rebuilds": log.count("bm25 rebuilt for") if bm25_builds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=200, help="posts to write (default 200)")
    parser.add_argument("--rate", type=float, default=5.0, help="posts per second (default 5)")
    parser.add_argument("--data-dir", type=Path, default=REPO / "var" / "bench-freshness")
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        help="background posts to import first (repeatable; default the demo posts)",
    )
    parser.add_argument("--server", default="runserver", choices=["runserver", "gunicorn"])
    parser.add_argument("--search", default="api", choices=["api", "in-process"])
    parser.add_argument("--pollers", type=int, default=2, help="searching threads (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on a post after")
    parser.add_argument("--setup-timeout", type=float, default=900.0, help="corpus indexing")
    args = parser.parse_args()
    if args.posts < 1 or args.rate <= 0 or args.pollers < 1:
        raise SystemExit("--posts and --pollers must be at least 1, and --rate above 0")
    corpus = args.corpus or [DEMO_POSTS]
    for path in corpus:
        if not path.is_file():
            raise SystemExit(f"--corpus {path}: not found")

    data_dir = args.data_dir.resolve()
    wipe_data_dir(data_dir)
    os.environ["PLAZA_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    os.environ["PLAZA_LOG_LEVEL"] = "WARNING"  # this process reports; the servers log
    database = wipe_database(os.environ.get("DATABASE_URL"))
    token, corpus_posts, broker = django_setup(corpus)
    from django.conf import settings

    backend = settings.PLAZA_SEARCH_BACKEND

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    python = sys.executable
    web = {
        "runserver": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "gunicorn": [python, "-m", "gunicorn", "config.wsgi:application", "-b",
                     f"127.0.0.1:{port}", "-w", "1", "-k", "gthread", "--threads", "4"],
    }[args.server]  # fmt: skip
    worker = [python, "-m", "celery", "-A", "config", "worker", "-Q", "default,index,gpu,build",
              "-c", "1", "-l", "info", "-n", f"freshness-{os.getpid()}@%h"]  # fmt: skip
    processes = Processes(child_env, data_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    stop = threading.Event()
    try:
        processes.start("worker", worker, PLAZA_LOG_LEVEL="INFO")  # its log is counted
        processes.start("web", web)
        import requests

        def web_up() -> bool:
            try:
                return requests.get(f"{base_url}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        web_s = wait_for("the web server", web_up, processes, 120)
        index_s = wait_for(
            "the worker to index the corpus", corpus_indexed, processes, args.setup_timeout
        )
        print(
            f"set up: {corpus_posts} corpus posts; web up in {web_s:.1f} s, "
            f"corpus indexed in {index_s:.1f} s more",
            file=sys.stderr,
        )

        # Warm-up and baseline: posts indexed long ago, searched by their own text.
        search = Searcher(args.search, base_url, token)
        import django.db

        from posts.models import Post

        sample = list(
            Post.objects.order_by("id").values_list("id", "external_id", "text")[:BASELINE_QUERIES]
        )
        django.db.connections.close_all()
        wait_for("search to answer", lambda: bool(search(sample[0][2])), processes, 300)
        baseline, baseline_found = [], 0
        for post_id, external_id, text in sample:
            t0 = time.monotonic()
            results = search(text)
            baseline.append(time.monotonic() - t0)
            baseline_found += found_in(results, post_id, external_id)

        run = uuid.uuid4().hex[:6]
        state = IndexState.live()
        pending: list[Written] = []
        lock = threading.Lock()
        errors: list[str] = []
        producer = threading.Thread(
            target=produce,
            args=(args, base_url, token, run, state, pending, lock, stop, errors),
            daemon=True,
        )
        started = time.monotonic()
        producer.start()
        done, sweeps = poll(search, state, pending, lock, producer, args.timeout, args.pollers)
        elapsed = time.monotonic() - started
        producer.join()
        processes.check()
    finally:
        stop.set()
        processes.stop()
    worker_log = processes.log_tail("worker", 10**9)

    found = [p for p in done if p.found_at is not None]
    lags = [p.found_at - p.written_at for p in found]
    writes = [p.written_at for p in done]
    rate = (len(writes) - 1) / (max(writes) - min(writes)) if len(writes) > 1 else 0.0
    overall = summary(lags)
    windows = [p.window_s for p in found]
    floors = summary([p.found_at - p.window_s - p.written_at for p in found])
    resolution_p95 = percentile(windows, 95) or 0.0
    searches = [p.searches for p in found]
    by_lang = {
        lang: summary([p.found_at - p.written_at for p in found if p.lang == lang])
        for lang in sorted({p.lang for p in done})
    }
    base = summary(baseline)
    goal_met = overall["p95_s"] is not None and overall["p95_s"] <= GOAL_P95_S
    goal_met = goal_met and len(found) == args.posts
    search_label = "GET /api/search" if args.search == "api" else "search_posts in-process"

    print(
        f"freshness: {args.posts} posts at {args.rate:g}/s through POST /api/posts, found by "
        f"{search_label} (k={K}); {backend} search backend, {args.server}, {database}, "
        f"{broker} broker, {corpus_posts} corpus posts, {os.cpu_count()} cores"
    )
    header = f"{'what':<44}{'n':>5}{'p50 s':>9}{'p95 s':>9}{'max s':>9}{'p50 vs baseline':>17}"
    print(header)
    print("-" * len(header))

    def row(name: str, stats: dict) -> None:
        def cell(value: float | None) -> str:
            return f"{value:>9.3f}" if value is not None else f"{'n/a':>9}"

        ratio = (
            f"{stats['p50_s'] / base['p50_s']:>16.1f}x"
            if stats["p50_s"] is not None and base["p50_s"]
            else f"{'n/a':>17}"
        )
        print(
            f"{name:<44}{stats['n']:>5}{cell(stats['p50_s'])}{cell(stats['p95_s'])}"
            f"{cell(stats['max_s'])}{ratio}"
        )

    row("baseline: search for an indexed post", base)
    row("new posts: 201 -> returned by search", overall)
    row("  lower bound: last seen not findable", floors)
    for lang, stats in by_lang.items():
        row(f"  lang {lang}", stats)
    missing = args.posts - len(found)
    print(
        f"goal p95 <= {GOAL_P95_S:g} s, every post found: {'met' if goal_met else 'NOT met'}   "
        f"missing after {args.timeout:g} s: {missing} (write errors {len(errors)})   "
        f"baseline found {baseline_found}/{len(sample)}"
    )
    counts = worker_counts(worker_log, bm25_builds())
    rebuilds = (
        f"{counts['bm25_rebuilds']} BM25 rebuilds"
        if counts["bm25_rebuilds"] is not None
        else "no BM25 builds (BM25 in SQL)"
    )
    print(
        f"achieved rate {rate:.2f}/s over {elapsed:.1f} s; poller: {sweeps} sweeps, "
        f"{percentile(searches, 50) or 0:.0f} searches per post (p50), resolution "
        f"{percentile(windows, 50) or 0:.3f} s p50 / {max(windows, default=0):.3f} s max; "
        f"worker: {counts['flushes']} flushes, {rebuilds}"
    )
    if resolution_p95 > RESOLUTION_WARN_S:
        print(
            f"note: the poller fell behind (resolution p95 {resolution_p95:.1f} s): each lag is "
            "an upper bound, off by up to that much; lower --rate, raise --pollers, or use a "
            "machine with more cores"
        )
    for line in errors[:5]:
        print(f"  {line}", file=sys.stderr)
    result = {
        "posts": args.posts,
        "found": len(found),
        "missing": missing,
        "write_errors": len(errors),
        "rate_per_s": round(rate, 3),
        "p50_s": overall["p50_s"],
        "p95_s": overall["p95_s"],
        "max_s": overall["max_s"],
        "by_lang": by_lang,
        "lower_bound": floors,
        "resolution_p50_s": percentile(windows, 50),
        "resolution_p95_s": resolution_p95,
        "baseline_search_p50_s": base["p50_s"],
        "p50_vs_baseline": (
            overall["p50_s"] / base["p50_s"] if overall["p50_s"] and base["p50_s"] else None
        ),
        "goal_p95_s": GOAL_P95_S,
        "goal_met": goal_met,
        "search": search_label,
        "backend": backend,
        "server": args.server,
        "database": database,
        "broker": broker,
        "corpus_posts": corpus_posts,
        **counts,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
