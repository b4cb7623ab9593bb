"""Answer time on the demo posts, a quiet machine against one core kept busy, same run.

    .venv/bin/python bench/answers.py [--rounds R] [--styles auto,generative]

Sets up a Plaza of its own in a temporary data dir (SQLite, the demo posts imported and
indexed with the real encoder), then asks a fixed list of English and Spanish questions
about the demo posts through the answer chain (search.chain.answer_stream: retrieval,
the support check, the bundled SmolLM2 on llama.cpp), R rounds after a warm-up, in each
style named:
  - quiet: nothing else running (the baseline);
  - busy: a CPU-bound process pinned to one of the CPUs this process may use, beside it;
  - busy, every usable CPU (generative only): the same, with the model forced onto every
    CPU the process may use (PLAZA_GENERATION_THREADS=N), the thread rule Plaza had before.
Prints total-time p50/p95 per run, the busy/quiet ratio (goal: p95 within 3x), how many
answers the deadline cut short, then one JSON line. Name the CPU beside the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from io import StringIO
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads from a hub

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUESTIONS = [
    "vacuna covid",
    "Is the flu shot safe with the covid vaccine?",
    "¿Puedo ponerme la vacuna de la gripe y la del COVID el mismo día?",
    "what happened with the flu this winter?",
    "¿Qué dijo el alcalde?",
    "when does the bookshop open this week?",
    "¿Cuándo empieza la campaña de vacunación?",
    "how much sleep do I need for my immune system?",
]
GOAL_RATIO = 3.0


def burn(cpu: int) -> None:
    """A CPU-bound loop pinned to one CPU: the 'other process' of the issue."""
    os.sched_setaffinity(0, {cpu})
    while True:
        pass


@contextmanager
def one_core_busy():
    cpu = sorted(os.sched_getaffinity(0))[-1]
    child = multiprocessing.get_context("spawn").Process(target=burn, args=(cpu,), daemon=True)
    child.start()
    time.sleep(1.0)  # let the scheduler settle the loop on its core
    try:
        yield cpu
    finally:
        child.terminate()
        child.join()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def setup(data_dir: Path) -> None:
    os.environ["PLAZA_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)  # SQLite under the data dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from search.services import index_sync as services

    call_command("migrate", verbosity=0, interactive=False)
    call_command(
        "import_posts", str(REPO / "posts" / "demo" / "posts.jsonl"), "--source", "demo",
        "--no-progress", stdout=StringIO(),
    )  # fmt: skip
    services.index_flush()


def run(style: str, rounds: int, chat=None) -> dict:
    from search.chain import answer_stream

    totals, first, cut = [], [], 0
    for _ in range(rounds):
        for question in QUESTIONS:
            result = list(answer_stream(question=question, style=style, chat=chat))[-1].result
            totals.append(result.timings["total_ms"])
            first.append(result.timings["first_token_ms"])
            cut += result.cut_short
    return {
        "p50_ms": statistics.median(totals),
        "p95_ms": percentile(totals, 95),
        "first_token_p50_ms": statistics.median(first),
        "cut_short": cut,
        "answers": len(totals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--styles", default="auto,generative")
    args = parser.parse_args()
    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    usable = len(os.sched_getaffinity(0))
    if usable < 2:
        raise SystemExit("this bench needs two CPUs: one to keep busy, one to answer on")
    with tempfile.TemporaryDirectory(prefix="plaza-bench-answers-") as tmp:
        setup(Path(tmp))
        from search.chain import chat_model, resolve_style

        run("generative", 1)  # warm-up: models loaded, caches filled
        figures = {}
        for style in styles:
            resolved = resolve_style(style, chat_model())
            quiet = run(style, args.rounds)
            with one_core_busy():
                busy = run(style, args.rounds)
            row = {"style": resolved, "quiet": quiet, "busy": busy}
            row["p95_ratio"] = busy["p95_ms"] / quiet["p95_ms"]
            row["p50_ratio"] = busy["p50_ms"] / quiet["p50_ms"]
            if resolved == "generative":
                every = chat_model()
                every.generator = replace(every.generator, threads=usable)
                with one_core_busy():
                    row["busy_all_threads"] = run(style, args.rounds, chat=every)
                row["all_threads_p95_ratio"] = row["busy_all_threads"]["p95_ms"] / quiet["p95_ms"]
            figures[style] = row
    print(f"{len(QUESTIONS)} demo questions x {args.rounds} rounds, {usable} usable CPUs")
    print(f"{'style':12} {'run':22} {'p50 ms':>9} {'p95 ms':>9} {'first p50':>10} {'cut':>4}")
    for style, row in figures.items():
        label = f"{style} ({row['style']})"
        for name in ("quiet", "busy", "busy_all_threads"):
            if name in row:
                r = row[name]
                print(
                    f"{label:12} {name:22} {r['p50_ms']:9.0f} {r['p95_ms']:9.0f} "
                    f"{r['first_token_p50_ms']:10.0f} {r['cut_short']:4}"
                )
        verdict = "met" if row["p95_ratio"] <= GOAL_RATIO else "NOT met"
        print(f"{'':12} busy/quiet p95 {row['p95_ratio']:.2f}x (goal <= {GOAL_RATIO}x: {verdict})")
        if "all_threads_p95_ratio" in row:
            print(f"{'':12} every CPU, busy/quiet p95 {row['all_threads_p95_ratio']:.2f}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
