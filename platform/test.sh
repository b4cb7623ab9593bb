#!/usr/bin/env bash
# Install Plaza with its test tools into .venv and run the test suite.
#   bash platform/test.sh [PYTEST ARGS...]
# With nothing set the suite runs on SQLite and the embedded broker; set DATABASE_URL
# (PostgreSQL) and CELERY_BROKER_URL (Redis) to run it against servers, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash platform/install.sh cpu,dev
export HF_HUB_OFFLINE=1
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
