"""The scratch database a benchmark drops and makes again, guarded by its name.

    from bench.scratch import scratch_database_recreate

    scratch_database_recreate("postgres://postgres@127.0.0.1:5432/plaza_bench")  # "postgresql"
    scratch_database_recreate("sqlite:////tmp/run/bench.sqlite3")                 # "sqlite"

One rule for every benchmark: a database whose name does not contain "bench" is refused
before anything is dropped (a PostgreSQL database by its name, a SQLite file by its file
name), so a DATABASE_URL left pointing at real data is never wiped. PostgreSQL is
dropped WITH (FORCE), as a benchmark's own workers may still hold connections, and made
again empty; a SQLite file is deleted (Django makes it again on migrate).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

__all__ = ["scratch_database_name", "scratch_database_recreate"]


def scratch_database_name(url: str) -> str:
    """The database `url` names, checked to be a scratch one: a PostgreSQL or SQLite URL
    whose database (or file) name contains "bench". Raises SystemExit otherwise."""
    parsed = urlparse(url)
    if parsed.scheme.startswith("sqlite"):
        import dj_database_url

        name = Path(dj_database_url.parse(url)["NAME"]).name
    elif parsed.scheme.startswith("postgres"):
        name = parsed.path.lstrip("/")
    else:
        raise SystemExit(f"DATABASE_URL={url}: a benchmark runs on sqlite or postgres only")
    if "bench" not in name:
        raise SystemExit(
            f"DATABASE_URL={url}: the benchmark drops and recreates this database; name a "
            "scratch one containing 'bench' (e.g. .../plaza_bench or bench.sqlite3)"
        )
    return name


def scratch_database_recreate(url: str) -> str:
    """Drop and make again the scratch database `url` names (see scratch_database_name);
    returns its vendor: "postgresql" or "sqlite"."""
    name = scratch_database_name(url)
    if urlparse(url).scheme.startswith("sqlite"):
        import dj_database_url

        Path(dj_database_url.parse(url)["NAME"]).unlink(missing_ok=True)
        return "sqlite"
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return "postgresql"
