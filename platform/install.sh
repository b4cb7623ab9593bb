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

# llama.cpp is compiled for this CPU's vector units, named one by one. A -march=native
# build also emits AMX tile instructions wherever the CPU lists AMX, and some virtual
# machines list AMX without letting a process use it: the first matrix product dies of
# SIGILL. Set CMAKE_ARGS yourself to choose other flags.
llama_flags="${CMAKE_ARGS:-}"
if [ -z "$llama_flags" ] && [ "$(uname -m)" = x86_64 ]; then
  cpu=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  llama_flags="-DGGML_NATIVE=OFF"
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C avx512f:AVX512 avx512vbmi:AVX512_VBMI \
              avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI; do
    if [[ "$cpu" == *" ${pair%%:*} "* ]]; then state=ON; else state=OFF; fi
    llama_flags+=" -DGGML_${pair#*:}=$state"
  done
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.plaza-install"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras $llama_flags"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing Plaza into .venv (first time: several minutes, llama.cpp compiles)..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  # The CPU build of torch: pinned, so pip never reaches for the CUDA wheels.
  .venv/bin/python -m pip install --quiet torch==2.13.0
  if [ "$(cat .venv/.plaza-llama 2>/dev/null)" != "$llama_flags" ]; then
    # Built with these flags, never a wheel pip cached from a build with other flags; the
    # wheel is kept per flag set, so the next checkout on this machine skips the compile.
    wheels="${XDG_CACHE_HOME:-$HOME/.cache}/plaza/llama-wheels/$(echo "$llama_flags" | sha256sum | cut -c1-16)"
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
      CMAKE_ARGS="$llama_flags" .venv/bin/python -m pip wheel --quiet --no-cache-dir --no-deps \
        "llama-cpp-python>=0.3" -w "$wheels"
    fi
    .venv/bin/python -m pip install --quiet --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
    echo "$llama_flags" > .venv/.plaza-llama
  fi
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  echo "$want" > "$stamp"
fi
