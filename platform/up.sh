#!/usr/bin/env bash
# Install Plaza into .venv and run it on the embedded default: SQLite and a
# filesystem Celery broker under var/, a real worker process, the bundled models, the
# demo posts and the demo advertiser (seed_demo). Ctrl-C stops everything.
#   bash platform/up.sh          (PLAZA_PORT=8000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
bash platform/install.sh cpu

export HF_HUB_OFFLINE=1
py=.venv/bin/python
port="${PLAZA_PORT:-8000}"
data_dir="${PLAZA_DATA_DIR:-var}"
mkdir -p "$data_dir"

$py manage.py migrate --noinput -v 0
$py manage.py import_posts posts/demo/posts.jsonl --source demo --no-progress
$py manage.py ensure_admin --password-file "$data_dir/admin-password.txt"
# The demo advertiser, its member `demo` and three campaigns; idempotent like the import.
$py manage.py seed_demo --password-file "$data_dir/demo-password.txt"

# -B runs the periodic tasks (beat) inside the one worker of the embedded setup.
.venv/bin/celery -A config worker -B -Q default,index,gpu,build -c 1 -l info \
  --schedule "$data_dir/celerybeat-schedule" > "$data_dir/worker.log" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM

cat <<MSG

  Plaza is running at http://127.0.0.1:$port/
  Admin:  http://127.0.0.1:$port/admin/  user admin, password in $data_dir/admin-password.txt
  Studio: http://127.0.0.1:$port/accounts/login/  user demo, password in $data_dir/demo-password.txt
  API:    http://127.0.0.1:$port/api/docs
  Worker log: $data_dir/worker.log      Stop with Ctrl-C.

MSG
# The production server (config/gunicorn.py: uvicorn workers, one per CPU unless
# WEB_CONCURRENCY says otherwise), on this machine's loopback; its access log follows.
PLAZA_BIND="127.0.0.1:$port" .venv/bin/gunicorn -c config/gunicorn.py
