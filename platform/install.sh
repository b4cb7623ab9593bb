#!/usr/bin/env bash
# Install Plaza and everything it needs into .venv (CPU host).
#   bash platform/install.sh [EXTRAS]     EXTRAS defaults to "cpu"; the tests use "cpu,dev"
# Re-running is cheap: it reinstalls only when pyproject.toml or the extras change.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-cpu}"

python=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "Plaza needs Python 3.11: sudo apt-get install python3.11 python3.11-venv python3.11-dev" >&2
  exit 1
fi

# llama-cpp-python compiles llama.cpp; venv and a C/C++ compiler must be there.
missing=()
"$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3.11-venv)
command -v g++ >/dev/null || missing+=(build-essential)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
  else
    echo "Plaza needs these system packages first: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.plaza-install"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing Plaza into .venv (first time: several minutes, llama.cpp compiles)..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  # The CPU build of torch: pinned, so pip never reaches for the CUDA wheels.
  .venv/bin/python -m pip install --quiet torch==2.13.0
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  echo "$want" > "$stamp"
fi
