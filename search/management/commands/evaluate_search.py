"""python manage.py evaluate_search DIR [--json]

Reads a BEIR-format collection (corpus.jsonl, queries.jsonl, qrels/test.tsv), indexes the
corpus into a temporary index with the code the site uses (ml.index, ml.bm25, the
configured encoder, ml.hybrid's fusion), and prints nDCG@10, Recall@10, Recall@100 and
MRR@10 for `dense`, `bm25` and `hybrid`; beside them, for comparison in the same run,
plain RRF over the same two lists and the plain baseline (sentence-transformers + an exact
faiss flat index). With --json the last line is one JSON object:
{"dense": {...}, "bm25": {...}, "hybrid": {...}}.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from ml.evaluation import (
    METRICS,
    baseline_dense_runs,
    evaluate_run,
    run_collection,
)
from ml.registry import resolve_model
from search import indexes
from search.management.beir import collection_from

ROWS = [
    ("dense", "dense"),
    ("bm25", "bm25"),
    ("hybrid", "hybrid"),
    ("rrf", "plain RRF (unweighted, for comparison)"),
    ("baseline", "baseline: sentence-transformers + flat FAISS"),
]


class Command(BaseCommand):
    help = "Evaluate dense, BM25 and hybrid retrieval on a BEIR-format collection."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir", type=Path, metavar="DIR")
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")
        parser.add_argument(
            "--model",
            default=None,
            help="Embedding model setting (default: PLAZA_EMBED_MODEL).",
        )
        parser.add_argument(
            "--no-baseline", action="store_true", help="Skip the plain baseline's run."
        )

    def handle(self, *args, **options) -> None:
        folder: Path = options["dir"]
        collection = collection_from(folder)
        model = options["model"] or settings.PLAZA_EMBED_MODEL
        encoder = indexes.encoder_for(model)
        self.stderr.write(
            f"{folder.name}: {len(collection.corpus)} passages, {len(collection.queries)} "
            f"queries; model {model}"
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="plaza-eval-") as tmp:
            runs = run_collection(
                collection,
                encode=encoder.encode,
                dim=encoder.dim,
                encoder_languages=indexes.encoder_languages(model),
                index_dir=Path(tmp) / "vectors",
                index_config=indexes.index_config(),
            )
        if not options["no_baseline"]:
            runs["baseline"] = baseline_dense_runs(collection, model_path=_loadable(model))
        scores = {name: evaluate_run(run, collection.qrels) for name, run in runs.items()}
        header = f"{'method':48} " + " ".join(f"{m:>10}" for m in METRICS)
        self.stdout.write(header)
        for key, label in ROWS:
            if key in scores:
                values = " ".join(f"{scores[key][m]:>10.3f}" for m in METRICS)
                self.stdout.write(f"{label:48} {values}")
        self.stderr.write(f"({time.perf_counter() - started:.0f} s)")
        if options["json"]:
            result = {
                name: {m: round(scores[name][m], 4) for m in METRICS}
                for name in ("dense", "bm25", "hybrid")
            }
            self.stdout.write(json.dumps(result))


def _loadable(model: str) -> str:
    resolved = resolve_model(model)
    return resolved.target
