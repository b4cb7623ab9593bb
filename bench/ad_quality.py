"""How good are the drafted headlines: ROUGE-L against the real headlines of held-out rows,
the adapter beside the base model, and distinct-2 diversity of drafting jobs.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ad_quality.py \\
        --dataset ../shared/data/ads/slogans.csv --adapter var/adapters/slogans-300/adapter \\
        --limit 200 --jobs 10 --n 10

- ROUGE-L (F1, `rouge-score` with stemming, the standard implementation): for each
  held-out row (the 10% split by description hash that training never saw), one greedy
  headline from (a) the base model asked with the training prompt, (b) the base model
  asked as drafting asks it without an adapter (two worked examples first), (c) the base
  with the adapter (the training prompt), each scored against the row's real headline.
- distinct-2: for `--jobs` held-out descriptions, a drafting job of `--n` sampled drafts
  (ads.services.drafting.draft_creatives: the real pipeline, checks and de-duplication included)
  with and without the adapter; distinct-2 = distinct word bigrams / all bigrams of a job's
  headlines, averaged over jobs (1.0: no bigram repeated).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

from ads.datasets import dataset_from_csv  # noqa: E402
from ads.models import Adapter  # noqa: E402
from ads.prompts import headline_prompt, headline_prompt_with_examples  # noqa: E402
from ads.services.drafting import Brief, draft_creatives  # noqa: E402
from ml.drafting import DraftModelConfig, DraftParams, get_draft_model  # noqa: E402


def distinct_2(texts: list[str]) -> float:
    bigrams = [
        tuple(words[i : i + 2])
        for words in (t.casefold().split() for t in texts)
        for i in range(len(words) - 1)
    ]
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, required=True, help="A peft adapter folder.")
    parser.add_argument("--base", default=settings.PLAZA_AD_BASE_MODEL)
    parser.add_argument("--limit", type=int, default=200, help="Held-out rows scored.")
    parser.add_argument("--jobs", type=int, default=10, help="Drafting jobs for distinct-2.")
    parser.add_argument("--n", type=int, default=10, help="Drafts per job.")
    args = parser.parse_args()

    rows = dataset_from_csv(args.dataset).eval[: args.limit]
    model = get_draft_model(
        DraftModelConfig(base=args.base, cache_dir=str(settings.PLAZA_MODEL_CACHE))
    )
    greedy = DraftParams(n=1, max_tokens=32, temperature=0.0, stop=("\n",))
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    adapter = str(args.adapter.resolve())

    def trained(row):
        return headline_prompt(description=row.desc, industry=row.industry)

    def with_examples(row):
        return headline_prompt_with_examples(description=row.desc, industry=row.industry)

    ways = {
        "base, training prompt": lambda r: (trained(r), None),
        "base, drafting prompt (2 examples)": lambda r: (with_examples(r), None),
        "base + adapter": lambda r: (trained(r), adapter),
    }
    print(f"{len(rows)} held-out rows of {args.dataset.name}; base {args.base}; {model.backend}")
    samples = {}
    for name, ask in ways.items():
        started = time.perf_counter()
        scores, outputs = [], []
        for row in rows:
            prompt, with_adapter = ask(row)
            [draft] = model.generate(prompt, adapter=with_adapter, params=greedy)
            outputs.append(draft.text)
            scores.append(scorer.score(row.output, draft.text)["rougeL"].fmeasure)
        samples[name] = outputs[:3]
        print(
            f"ROUGE-L F1 {name:38} {statistics.mean(scores):.4f}"
            f"  ({time.perf_counter() - started:.0f} s)"
        )
    for name, outputs in samples.items():
        print(f"  {name}: {outputs}")
    print(f"  real: {[r.output for r in rows[:3]]}")

    record = Adapter(name=args.adapter.parent.name, base_model=args.base, path=adapter)
    for label, chosen in (("base model", None), ("adapter", record)):
        values, kept = [], []
        for i, row in enumerate(rows[: args.jobs]):
            brief = Brief(description=row.desc, industry=row.industry)
            outcome = draft_creatives(brief=brief, n=args.n, adapter=chosen, seed=1000 + i)
            headlines = [d.headline for d in outcome.drafts]
            kept.append(len(headlines))
            values.append(distinct_2(headlines))
        print(
            f"distinct-2 of a job's headlines, {label:10} {statistics.mean(values):.3f}"
            f"  ({args.jobs} jobs, {statistics.mean(kept):.1f} drafts kept of {args.n})"
        )


if __name__ == "__main__":
    main()
