#!/usr/bin/env bash
# Install Plaza with its test tools into .venv and run the test suite.
#   bash platform/test.sh [PYTEST ARGS...]
# With nothing set the suite runs on SQLite and the embedded broker; set DATABASE_URL
# (PostgreSQL) and CELERY_BROKER_URL (Redis) to run it against servers, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash platform/install.sh cpu,dev
# The browser tests drive Debian's Chromium (a test tool's own browser download fails
# here); without it they skip, saying so.
if ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing chromium and chromium-driver for the browser tests..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        chromium chromium-driver; } >/dev/null || echo "(could not install them: e2e tests skip)" >&2
  else
    echo "(no chromium/chromedriver: the e2e tests skip; sudo apt-get install chromium chromium-driver)" >&2
  fi
fi
export HF_HUB_OFFLINE=1
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
