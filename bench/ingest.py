"""Import throughput: `import_posts` against a naive one-save()-per-row loop, same run.

    .venv/bin/python bench/ingest.py [--file PATH] [--databases sqlite,postgres]
                                     [--postgres-url URL] [--naive-rows N]

For each database it makes a scratch database, migrates it, and measures in one process:
  - import_posts, first import of the whole file (inserts), rows/s;
  - import_posts again on the same file (updates in place), rows/s;
  - the naive loop (json.loads, Author get_or_create, Post update_or_create: one save()
    per row) over the first N rows of the same file into an empty table, rows/s.
No embedding happens on this path. Prints one table with the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.scratch import scratch_database_recreate  # noqa: E402

DEFAULT_FILE = REPO.parent / "shared" / "data" / "posts" / "es-news-tweets.jsonl.gz"


def child(path: Path, naive_rows: int) -> dict:
    """Runs inside a process whose DATABASE_URL is the scratch database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from posts.models import Author, Post

    call_command("migrate", verbosity=0)

    def timed_import() -> tuple[float, str]:
        out = io.StringIO()
        start = time.perf_counter()
        call_command("import_posts", str(path), "--no-progress", stdout=out, stderr=io.StringIO())
        return time.perf_counter() - start, out.getvalue().strip().splitlines()[-1]

    insert_s, insert_line = timed_import()
    rows = Post.objects.count()
    update_s, update_line = timed_import()

    Post.objects.all().delete()
    Author.objects.all().delete()
    start = time.perf_counter()
    done = 0
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as lines:
        for line in lines:
            if done >= naive_rows:
                break
            record = json.loads(line)
            author, _ = Author.objects.get_or_create(handle=record["author"])
            Post.objects.update_or_create(
                source="plaza",
                external_id=record["id"],
                defaults={
                    "author": author,
                    "text": record["text"],
                    "lang": record.get("lang", ""),
                    "created_at": datetime.fromisoformat(record["created_at"]),
                    "likes": record.get("likes", 0),
                    "reposts": record.get("reposts", 0),
                    "replies": record.get("replies", 0),
                },
            )
            done += 1
    naive_s = time.perf_counter() - start
    return {
        "vendor": connection.vendor,
        "rows": rows,
        "insert_rows_s": rows / insert_s,
        "update_rows_s": rows / update_s,
        "naive_rows": done,
        "naive_rows_s": done / naive_s,
        "insert_line": insert_line,
        "update_line": update_line,
    }


def run_child(database_url: str, path: Path, naive_rows: int) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench",
        "DJANGO_ALLOWED_HOSTS": "localhost",
    }
    with tempfile.TemporaryDirectory() as data_dir:
        env["PLAZA_DATA_DIR"] = data_dir
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--file",
                str(path),
                "--naive-rows",
                str(naive_rows),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/plaza_bench")
    parser.add_argument("--naive-rows", type=int, default=3000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.file, args.naive_rows)))
        return
    if not args.file.is_file():
        raise SystemExit(f"{args.file}: not found (pass --file)")

    results = []
    for database in args.databases.split(","):
        if database == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results.append(
                    run_child(f"sqlite:///{tmp}/bench.sqlite3", args.file, args.naive_rows)
                )
        elif database == "postgres":
            scratch_database_recreate(args.postgres_url)  # refused unless its name says bench
            results.append(run_child(args.postgres_url, args.file, args.naive_rows))
        else:
            raise SystemExit(f"--databases: unknown {database!r} (sqlite, postgres)")

    print(f"file: {args.file.name}   naive loop over the first {args.naive_rows} rows")
    header = (
        f"{'database':<11}{'rows':>8}{'import rows/s':>15}{'re-import rows/s':>18}"
        f"{'naive rows/s':>14}{'import/naive':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['vendor']:<11}{r['rows']:>8}{r['insert_rows_s']:>15,.0f}{r['update_rows_s']:>18,.0f}"
            f"{r['naive_rows_s']:>14,.0f}{r['insert_rows_s'] / r['naive_rows_s']:>13.1f}x"
        )
    print(json.dumps({r["vendor"]: r for r in results}))


if __name__ == "__main__":
    main()
