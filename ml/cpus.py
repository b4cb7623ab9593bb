"""CPU counts for the model backends: the CPUs this process may use, and those of them idle now.

    from ml.cpus import generation_threads, idle_cpus, usable_cpus

    usable_cpus()            # affinity mask, capped by the cgroup CPU quota: 2
    idle_cpus()              # of those, the ones idle over a 50 ms sample of /proc/stat: 1
    generation_threads()     # threads for one generation: idle_cpus(); at least 1
    generation_threads(4)    # a setting overrides, capped by usable_cpus(): 2
    budget_math_threads(1)   # a web process: torch and OpenMP (FAISS) run one thread each

Why idle and not usable: llama.cpp's (and OpenMP's) threads spin at a barrier after every
step and wait for the slowest one. With a thread on a core that another process holds, each
step waits for a time slice there: on the team's 2-core VM, with one core busy, 2 threads
decoded 0.5 tokens/s against 6.4 with 1 thread. So a generation asks ``generation_threads()``
when it starts (not only at load) and runs that many threads; a busy CPU counts as busy
whoever holds it, this process's other threads included (the embedded default serves the
web from the same process). Plain Python, Linux-first: where /proc/stat cannot be read,
``idle_cpus`` falls back to ``usable_cpus``.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["budget_math_threads", "generation_threads", "idle_cpus", "usable_cpus"]

# The variables the math libraries read when they start: OpenMP (FAISS, torch), MKL, OpenBLAS.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

logger = logging.getLogger(__name__)

PROC_STAT = Path("/proc/stat")
BUSY_SHARE = 0.5  # a CPU whose busy share of the sample reaches this counts as busy
# /proc/stat per-cpu columns: user nice system idle iowait irq softirq steal guest guest_nice.
# guest and guest_nice are already inside user and nice; iowait is idle time.
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)
_TOTAL_COLUMNS = 8  # user .. steal


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2/v1 CPU quota."""
    return max(1, _cap_by_quota(len(_affinity())))


def idle_cpus(
    sample_s: float = 0.05,
    *,
    read_stat: Callable[[], str] | None = None,
    cpus: Iterable[int] | None = None,
) -> int:
    """How many CPUs of this process's affinity mask were idle over the next `sample_s`
    seconds (busy share below ``BUSY_SHARE``), capped by the cgroup CPU quota; at least 1.

    `read_stat` returns /proc/stat's text (called twice, `sample_s` apart) and `cpus` is the
    affinity mask (default: ``os.sched_getaffinity(0)``); tests pass both. Where /proc/stat
    cannot be read or lists none of `cpus`, the answer is ``usable_cpus()``."""
    read = read_stat or _read_proc_stat
    allowed = set(_affinity() if cpus is None else cpus)
    try:
        before = _per_cpu(read())
        time.sleep(max(0.0, sample_s))
        after = _per_cpu(read())
    except (OSError, ValueError):  # not Linux, or a /proc we cannot parse
        return usable_cpus()
    measured = sorted(allowed & before.keys() & after.keys())
    if not measured:
        return usable_cpus()
    idle = 0
    for cpu in measured:
        busy_delta, total_delta = (a - b for a, b in zip(after[cpu], before[cpu], strict=True))
        # No tick counted on it in the sample (too short, or a tickless idle CPU): idle.
        if total_delta <= 0 or busy_delta / total_delta < BUSY_SHARE:
            idle += 1
    return max(1, _cap_by_quota(idle))


def generation_threads(requested: int = 0) -> int:
    """Threads for one generation: `requested` (a setting) when > 0, never more than
    ``usable_cpus()``; 0 means the CPUs idle now (``idle_cpus()``)."""
    if requested < 0:
        raise ValueError(f"requested={requested!r}: expected an int >= 0 (0 = the idle CPUs)")
    if requested:
        return min(requested, usable_cpus())
    return idle_cpus()


def budget_math_threads(threads: int) -> int:
    """Hold this process's math libraries to `threads` threads each (0 = leave their own
    defaults); returns the budget, or 0. For web processes: several share the machine's
    cores, and each library's default (one thread per core) makes them fight over the same
    cores, so two overlapping searches ran slower than one after the other.

    Sets the start-up variables (``OMP_NUM_THREADS`` etc.) where they are unset, so a
    library loaded later starts within the budget, and torch and FAISS where already
    loaded. A variable set by hand wins."""
    if threads < 0:
        raise ValueError(f"threads={threads!r}: expected an int >= 0 (0 = no budget)")
    if not threads:
        return 0
    try:  # OMP_NUM_THREADS set by hand is the budget
        threads = max(1, int(os.environ.get("OMP_NUM_THREADS") or threads))
    except ValueError:  # e.g. "4,2" (nested OpenMP): the libraries parse it themselves
        return threads
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)
    return threads


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def _cap_by_quota(cpus: int) -> int:
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return cpus


def _cgroup_cpu_quota() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def _read_proc_stat() -> str:
    return PROC_STAT.read_text()


def _per_cpu(stat: str) -> dict[int, tuple[int, int]]:
    """{cpu id: (busy ticks, total ticks)} from /proc/stat's "cpuN ..." lines."""
    counters = {}
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit():
            continue  # the "cpu" total line, intr, ctxt, ...
        ticks = [int(value) for value in rest.split()[:_TOTAL_COLUMNS]]
        ticks += [0] * (_TOTAL_COLUMNS - len(ticks))  # old kernels list fewer columns
        counters[int(name[3:])] = (sum(ticks[i] for i in _BUSY_COLUMNS), sum(ticks))
    return counters
