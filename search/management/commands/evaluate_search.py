"""python manage.py evaluate_search DIR [--json]

Reads a BEIR-format collection (corpus.jsonl, queries.jsonl, qrels/test.tsv), indexes the
corpus into a temporary index of the configured search backend with the code the site
uses (PLAZA_SEARCH_BACKEND: `faiss`, ml.index and ml.bm25 in a temporary folder;
`postgres`, a scratch generation's table, dropped after; the configured encoder;
ml.hybrid's fusion), and prints nDCG@10, Recall@10, Recall@100 and
MRR@10 for `dense`, `bm25` and `hybrid`; beside them, for comparison in the same run,
plain RRF over the same two lists and the plain baseline (sentence-transformers + an exact
faiss flat index). With --json the last line is one JSON object:
{"dense": {...}, "bm25": {...}, "hybrid": {...}}.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from ml.evaluation import (
    METRICS,
    LocalCorpusIndex,
    baseline_dense_runs,
    evaluate_run,
    index_corpus,
    run_collection,
)
from ml.language import detect_languages
from ml.registry import resolve_model
from search import indexes
from search.backends import Filters, SearchBackend, search_backend
from search.management.beir import collection_from
from search.models import IndexGeneration

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
        backend = search_backend()
        self.stderr.write(f"search backend: {backend.name}")
        with tempfile.TemporaryDirectory(prefix="plaza-eval-") as tmp:

            def build(texts: list[str]):
                if backend.name == "faiss":
                    return LocalCorpusIndex(
                        *index_corpus(
                            texts,
                            encode=encoder.encode,
                            dim=encoder.dim,
                            index_dir=Path(tmp) / "vectors",
                            index_config=indexes.index_config(),
                        )
                    )
                return BackendCorpusIndex(backend, texts, encode=encoder.encode, model=model)

            runs = run_collection(
                collection,
                encode=encoder.encode,
                encoder_languages=indexes.encoder_languages(model),
                build=build,
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


class BackendCorpusIndex:
    """A corpus in a search backend's own index: a scratch generation (never live, its
    name starting "eval-"), dropped with its row on close. Text i has id i + 1."""

    BATCH = 256

    def __init__(self, backend: SearchBackend, texts: list[str], *, encode, model: str):
        self.backend = backend
        dim = int(encode(["dimension probe"]).shape[1])
        self.generation = IndexGeneration.objects.create(
            name=f"eval-{time.time_ns()}",
            backend=backend.name,
            embed_model=model,
            dim=dim,
            state=IndexGeneration.State.RETIRED,
        )
        try:
            backend.generation_create(self.generation, bulk=True)
            langs = detect_languages(texts)
            moment = datetime(2020, 1, 1, tzinfo=UTC)
            for number, start in enumerate(range(0, len(texts), self.BATCH)):
                part = texts[start : start + self.BATCH]
                rows = [
                    {
                        "id": start + i + 1,
                        "text": text,
                        "created_at": moment,
                        "content_hash": "",
                        "author_id": 0,
                        "lang": langs[start + i] or "",
                    }
                    for i, text in enumerate(part)
                ]
                backend.build_write(self.generation, number, rows, encode(part))
            backend.generation_finish(self.generation)
        except BaseException:
            self.close()
            raise

    def dense(self, vector: np.ndarray, depth: int):
        found = self.backend.dense(self.generation, vector, depth=depth, filters=Filters())
        return found.ids, found.scores

    def lexical(self, text: str, depth: int):
        found = self.backend.lexical(self.generation, text, depth=depth, filters=Filters())
        return found.ids, found.scores, found.langs

    def close(self) -> None:
        self.backend.generation_drop(self.generation)
        self.generation.delete()


def _loadable(model: str) -> str:
    resolved = resolve_model(model)
    return resolved.target
