"""How good are the drafts: faithfulness, ROUGE-L against real headlines, diversity and
speed, for the base model alone, the default adapter Plaza ships and a slogans-trained
adapter, in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ad_quality.py \\
        --slogans ../shared/data/ads/slogans.csv \\
        --slogans-adapter var/adapters/slogans-v2/adapter --rouge-rows 100 --jobs 8 --n 8

Held-out briefs: the eval split (by description hash: training never saw them) of Plaza's
own demo set, ads/demo/adapter_set.csv (English and Spanish briefs with product names and
keywords), beside the slogans file's eval rows (English descriptions and the headlines
that ran for them).

- faithful share: of the drafts a job keeps, those that pass every faithfulness check
  when checked again from their text (ads.creative.faithful); "first try": of every
  candidate the model wrote, those that passed every hard and faithfulness check.
- named: kept drafts that name the product as the brief writes it.
- ROUGE-L (F1, `rouge-score` with stemming): one greedy headline per held-out row, asked as
  drafting asks each model (the base model after worked examples, an adapter with its
  training prompt), against the row's real headline.
- distinct-2: distinct word bigrams / all bigrams of a job's headlines and posts, averaged
  over jobs (1.0: no bigram repeated).
- drafts/min: kept drafts per minute of drafting-job time (the real pipeline:
  ads.services.drafting.draft_creatives, checks, repairs and de-duplication included).
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

from ads.creative.check import Creative  # noqa: E402
from ads.creative.faithful import check_faithful  # noqa: E402
from ads.datasets import DEFAULT_SET_CSV, Row, dataset_from_csv  # noqa: E402
from ads.models import Adapter  # noqa: E402
from ads.prompts import headline_prompt, headline_prompt_with_examples  # noqa: E402
from ads.services.default_adapter import SHIPPED_PATH, default_manifest  # noqa: E402
from ads.services.drafting import Brief, adapter_folder, draft_creatives  # noqa: E402
from ml.drafting import DraftModelConfig, DraftParams, get_draft_model  # noqa: E402


def distinct_2(texts: list[str]) -> float:
    bigrams = [
        tuple(words[i : i + 2])
        for words in (t.casefold().split() for t in texts)
        for i in range(len(words) - 1)
    ]
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


def brief_of(row: Row) -> Brief:
    return Brief(
        description=row.desc,
        product=row.product,
        keywords=row.keywords,
        language=row.language,
        industry=row.industry,
    )


def held_out_briefs(own: list[Row], slogans: list[Row], jobs: int) -> list[Row]:
    """One row per product, own briefs first (alternating languages), then slogans rows."""
    by_brief: dict[tuple[str, str], Row] = {}
    for row in own:
        by_brief.setdefault((row.product, row.desc), row)
    english = [r for r in by_brief.values() if r.language == "en"]
    spanish = [r for r in by_brief.values() if r.language == "es"]
    mixed = [r for pair in zip(english, spanish, strict=False) for r in pair]
    mixed += english[len(spanish) :] + spanish[len(english) :]
    own_jobs = mixed[: max(1, jobs - jobs // 4)]
    return own_jobs + slogans[: jobs - len(own_jobs)]


def rouge(model, adapter: Adapter | None, rows: list[Row], scorer) -> tuple[float, list[str]]:
    greedy = DraftParams(n=1, max_tokens=32, temperature=0.0, stop=("\n",))
    scores, outputs = [], []
    for row in rows:
        fields = row.brief  # description, product, keywords, industry, language
        if adapter is None:
            prompt, path = headline_prompt_with_examples(**fields), None
        else:
            prompt, path = headline_prompt(**fields), str(adapter_folder(adapter))
        [draft] = model.generate(prompt, adapter=path, params=greedy)
        outputs.append(draft.text)
        scores.append(scorer.score(row.output, draft.text)["rougeL"].fmeasure)
    return statistics.mean(scores), outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slogans", type=Path, required=True, help="The slogans CSV.")
    parser.add_argument(
        "--slogans-adapter", type=Path, required=True, help="A peft adapter trained on it."
    )
    parser.add_argument("--rouge-rows", type=int, default=100, help="Slogans rows scored.")
    parser.add_argument("--jobs", type=int, default=8, help="Drafting jobs per model.")
    parser.add_argument("--n", type=int, default=8, help="Drafts per job.")
    args = parser.parse_args()

    manifest = default_manifest()
    if manifest is None:
        sys.exit("the shipped default adapter is missing: run manage.py build_default_adapter")
    base = settings.PLAZA_AD_BASE_MODEL
    models = {
        "base model": None,
        "default adapter": Adapter(
            name="plaza-default", base_model=base, path=SHIPPED_PATH, tasks=manifest["tasks"]
        ),
        "slogans adapter": Adapter(
            name=args.slogans_adapter.parent.name,
            base_model=base,
            path=str(args.slogans_adapter.resolve()),
            tasks=["headline"],
        ),
    }
    own = dataset_from_csv(DEFAULT_SET_CSV).eval
    slogans = dataset_from_csv(args.slogans).eval
    rouge_rows = {"slogans": slogans[: args.rouge_rows], "own": own}
    briefs = held_out_briefs(own, slogans, args.jobs)
    model = get_draft_model(DraftModelConfig(base=base, cache_dir=str(settings.PLAZA_MODEL_CACHE)))
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    print(
        f"base {base} on {model.backend}; ROUGE-L on {len(rouge_rows['slogans'])} slogans and "
        f"{len(own)} own held-out rows; {len(briefs)} drafting jobs of {args.n} per model "
        f"({sum(r.language == 'es' for r in briefs)} Spanish)"
    )
    table = []
    for name, adapter in models.items():
        row = {"model": name}
        for label, rows in rouge_rows.items():
            started = time.perf_counter()
            row[f"rouge_{label}"], outputs = rouge(model, adapter, rows, scorer)
            print(f"  {name}: ROUGE-L {label} {row[f'rouge_{label}']:.4f} "
                  f"({time.perf_counter() - started:.0f} s), e.g. {outputs[:2]}")  # fmt: skip
        kept = faithful = named = generated = passed = 0
        seconds, diversity = 0.0, []
        for i, held in enumerate(briefs):
            brief = brief_of(held)
            outcome = draft_creatives(brief=brief, n=args.n, adapter=adapter, seed=1000 + i)
            seconds += outcome.seconds
            kept += len(outcome.drafts)
            named += outcome.named
            generated += outcome.generated
            passed += len(outcome.drafts) + outcome.dropped.get("over_n", 0)
            passed += outcome.dropped.get("near_duplicate", 0)
            for draft in outcome.drafts:
                checks = check_faithful(
                    Creative(draft.headline, draft.body, draft.cta), brief.facts
                )
                faithful += all(result.ok for result in checks.values())
            diversity.append(distinct_2([f"{d.headline} {d.body}" for d in outcome.drafts]))
            print(f"  {name}: job {i + 1} ({held.language}) kept {len(outcome.drafts)} "
                  f"named {outcome.named} of {outcome.generated} written, "
                  f"{outcome.seconds:.0f} s; dropped {outcome.dropped}")  # fmt: skip
            if outcome.drafts:
                print(f"      {outcome.drafts[0].headline} | {outcome.drafts[0].body}")
        row |= {
            "kept": kept,
            "faithful": faithful / kept if kept else 0.0,
            "first_try": passed / generated if generated else 0.0,
            "named": named / kept if kept else 0.0,
            "distinct_2": statistics.mean(diversity) if diversity else 0.0,
            "drafts_per_min": kept / seconds * 60 if seconds else 0.0,
        }
        table.append(row)
    print()
    print("| model | faithful (kept) | first try | named | ROUGE-L slogans | ROUGE-L own "
          "| distinct-2 | drafts/min | kept |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['model']} | {r['faithful']:.0%} | {r['first_try']:.0%} | {r['named']:.0%} "
            f"| {r['rouge_slogans']:.4f} | {r['rouge_own']:.4f} | {r['distinct_2']:.3f} "
            f"| {r['drafts_per_min']:.1f} | {r['kept']} |"
        )


if __name__ == "__main__":
    main()
