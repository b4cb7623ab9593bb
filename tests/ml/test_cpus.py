"""ml.cpus: idle CPUs counted from two /proc/stat snapshots, the thread rule for a
generation (a setting overrides, capped by the usable CPUs), and the fallbacks. No model loads:
the snapshots are fed as text; the real /proc/stat path is pinned by tests/ml/test_generation.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml import cpus
from ml.cpus import generation_threads, idle_cpus, usable_cpus

REPO = Path(__file__).resolve().parents[2]


def stat_text(ticks: dict[int, tuple[int, int]]) -> str:
    """/proc/stat text with one "cpuN" line per CPU: (busy, idle) ticks, the busy ticks
    spread over user, system, softirq and steal, the idle ones over idle and iowait."""
    lines = ["cpu  1 2 3 4 5 6 7 8 0 0"]  # the all-CPU total: ignored
    for cpu, (busy, idle) in sorted(ticks.items()):
        system, softirq, steal = busy // 2, busy // 4, busy // 8
        user = busy - system - softirq - steal
        lines.append(
            f"cpu{cpu} {user} 0 {system} {idle - idle // 4} {idle // 4} 0 {softirq} {steal} 0 0"
        )
    lines += ["intr 12345 0 0", "ctxt 678", "btime 1700000000", "processes 42"]
    return "\n".join(lines) + "\n"


def feed(*snapshots: dict[int, tuple[int, int]]):
    """A read_stat that returns the given snapshots in turn."""
    texts = iter(stat_text(s) for s in snapshots)
    return lambda: next(texts)


@pytest.fixture(autouse=True)
def no_quota(monkeypatch):
    """No cgroup CPU quota unless a test sets one (the test machine's own is not pinned)."""
    monkeypatch.setattr(cpus, "_cgroup_cpu_quota", lambda: None)


def test_all_idle_cpus_count():
    """Every CPU of the mask that did almost nothing over the sample is idle."""
    before = {0: (1000, 5000), 1: (2000, 4000), 2: (10, 90), 3: (0, 0)}
    after = {0: (1001, 5099), 1: (2002, 4098), 2: (10, 190), 3: (0, 100)}
    assert idle_cpus(0, read_stat=feed(before, after), cpus={0, 1, 2, 3}) == 4


def test_a_busy_cpu_is_not_counted():
    """A CPU busy for most of the sample (user, system, softirq or steal) is not idle."""
    before = {0: (1000, 5000), 1: (2000, 4000), 2: (500, 500)}
    after = {0: (1095, 5005), 1: (2002, 4098), 2: (560, 540)}  # cpu0 95% busy, cpu2 60%
    assert idle_cpus(0, read_stat=feed(before, after), cpus={0, 1, 2}) == 1


def test_cpus_outside_the_affinity_mask_are_ignored():
    """Only the CPUs this process may use are counted, idle or busy."""
    before = {0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (0, 0)}
    after = {0: (100, 0), 1: (0, 100), 2: (0, 100), 3: (0, 100)}
    assert idle_cpus(0, read_stat=feed(before, after), cpus={0, 1}) == 1
    assert idle_cpus(0, read_stat=feed(before, after), cpus={1, 3}) == 2


def test_at_least_one_when_every_cpu_is_busy():
    """All allowed CPUs busy: one thread still runs."""
    before = {0: (0, 0), 1: (0, 0)}
    after = {0: (100, 0), 1: (90, 10)}
    assert idle_cpus(0, read_stat=feed(before, after), cpus={0, 1}) == 1


def test_the_cgroup_quota_caps_the_idle_count(monkeypatch):
    """A 1.5-CPU quota allows 2 threads however many CPUs are idle."""
    monkeypatch.setattr(cpus, "_cgroup_cpu_quota", lambda: 1.5)
    before = {cpu: (0, 0) for cpu in range(4)}
    after = {cpu: (0, 100) for cpu in range(4)}
    assert idle_cpus(0, read_stat=feed(before, after), cpus=range(4)) == 2


def test_unreadable_proc_stat_falls_back_to_the_usable_cpus():
    """Where /proc/stat cannot be read (not Linux) or lists none of the allowed CPUs, the
    answer is usable_cpus()."""

    def unreadable() -> str:
        raise FileNotFoundError("/proc/stat")

    assert idle_cpus(0, read_stat=unreadable) == usable_cpus()
    elsewhere = feed({7: (0, 0)}, {7: (0, 100)})
    assert idle_cpus(0, read_stat=elsewhere, cpus={0, 1}) == usable_cpus()


def test_the_real_proc_stat_gives_a_count_within_the_usable_cpus():
    """On this machine, whatever it is doing, the count is between 1 and usable_cpus()."""
    assert 1 <= idle_cpus(0.02) <= usable_cpus()


def test_usable_cpus_is_the_affinity_mask_capped_by_the_quota(monkeypatch):
    """The affinity mask's size, capped by the quota rounded up, at least 1."""
    mask = len(os.sched_getaffinity(0))
    assert usable_cpus() == mask
    monkeypatch.setattr(cpus, "_cgroup_cpu_quota", lambda: 0.2)
    assert usable_cpus() == 1


def test_a_setting_overrides_the_idle_count_but_never_exceeds_the_usable_cpus(monkeypatch):
    """requested > 0 is taken as is up to usable_cpus(), whatever is idle; 0 is idle_cpus()."""

    def not_read() -> str:
        raise AssertionError("a setting > 0 does not sample /proc/stat")

    monkeypatch.setattr(cpus, "_read_proc_stat", not_read)
    assert generation_threads(1) == 1
    assert generation_threads(usable_cpus()) == usable_cpus()
    assert generation_threads(10_000) == usable_cpus()
    monkeypatch.setattr(cpus, "_cgroup_cpu_quota", lambda: 1.0)
    assert generation_threads(10_000) == 1


def test_zero_means_the_idle_cpus(monkeypatch):
    """generation_threads(0) counts the idle CPUs of the mask from /proc/stat."""
    mask = sorted(os.sched_getaffinity(0))
    before = {cpu: (0, 0) for cpu in mask}
    after = {cpu: (0, 100) for cpu in mask} | {mask[0]: (100, 0)}  # the first CPU busy
    monkeypatch.setattr(cpus, "_read_proc_stat", feed(before, after))
    assert generation_threads(0) == max(1, len(mask) - 1)


def test_a_negative_request_is_refused():
    """A negative thread count is a mistake, named as such."""
    with pytest.raises(ValueError, match="requested=-1"):
        generation_threads(-1)


def test_ml_embeddings_still_exports_usable_cpus():
    """The helper moved to ml.cpus; the old import path keeps working."""
    from ml.embeddings import usable_cpus as old

    assert old is usable_cpus


@pytest.mark.integration
def test_a_thread_budget_holds_libraries_loaded_later_and_yields_to_a_set_variable():
    """budget_math_threads(1) before torch and FAISS load: both start with one thread. A
    variable set by hand wins; 0 leaves the libraries alone; a negative budget is refused."""
    code = (
        "import sys; from ml.cpus import budget_math_threads; "
        "print(budget_math_threads(int(sys.argv[1]))); "
        "import torch, faiss; print(torch.get_num_threads(), faiss.omp_get_max_threads())"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}

    def run(budget: int, **extra: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", code, str(budget)], env={**env, **extra}, cwd=REPO,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.split()

    assert run(1) == ["1", "1", "1"]
    if usable_cpus() > 1:
        assert run(1, OMP_NUM_THREADS="2") == ["2", "2", "2"]
        budget, torch_threads, _ = run(0)
        assert budget == "0" and int(torch_threads) > 1
    with pytest.raises(ValueError, match="threads=-1"):
        cpus.budget_math_threads(-1)
