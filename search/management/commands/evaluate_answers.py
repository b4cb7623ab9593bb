"""python manage.py evaluate_answers DIR --answers FILE [--lang en] [--limit N] [--json]
                                     [--details FILE]

Answers the questions of a BEIR-format collection (DIR: corpus.jsonl, queries.jsonl,
qrels/test.tsv) with the site's chain: the corpus is indexed into a temporary index with
the site's code (ml.index, ml.bm25, the configured encoder), the top posts retrieved by
hybrid search (with the site's relevance rule), and answered by the configured model
through the same prompt, streaming, citation check and attribution. FILE holds the gold
answers (`{"_id": query id, "<lang>": [answers]}` per line; --lang picks the language,
default: the collection's folder suffix, else en).

Prints: the share of answers that contain a gold answer (case and accents folded), the
citation precision (cited posts that are relevant), the share of answers with no valid
citation (as the model wrote them, and as shown), the share made only of the posts' own
sentences (and the gold-answer rate of everything the model wrote), the supported-sentence
rate by a check independent of the chain's (the cited post holds at least 80% of the
sentence's content words, or the sentence is a quote of it), the share of answers in the
collection's language, the share holding a word of the prompt's worked examples that no
read post has, the longest answer, the share cut short by the deadline, and first-token
and total latency (p50, p95). With --json the last line is one JSON object of those
figures.
--details FILE writes one JSON line per question (the question, the answer, whether it
holds a gold answer, the posts the model read and each sentence with its source) to read
what the figures count.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ml.answer_compose import EXAMPLES, Source, encoder_native, relevant
from ml.bm25 import fold, tokenize
from ml.evaluation import index_corpus
from ml.hybrid import hybrid_search
from ml.language import detect_language
from search import indexes
from search.chain import ANSWER_SOURCES, answer_from_sources, chat_model
from search.management.beir import collection_from


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


SUPPORTED_WORD_SHARE = 0.8  # the independent check: this share of a sentence's words
_MARKERS = re.compile(r"\[\d+\]|[“”«»\"]|…")
EXAMPLE_WORDS = {
    w for pair in EXAMPLES.values() for text in pair for w in tokenize(_MARKERS.sub(" ", text))
}


def independently_supported(sentence: str, post: str) -> bool:
    """The cited post holds SUPPORTED_WORD_SHARE of the sentence's content words, or the
    sentence (markers, quotation marks and cut marks removed) is a quote of it. Written
    apart from ml.support, so the figure does not grade the chain by its own rule."""
    claim = " ".join(_MARKERS.sub(" ", sentence).split())
    if claim and fold(claim) in " ".join(fold(post).split()):
        return True
    words = set(tokenize(claim))
    return bool(words) and len(words & set(tokenize(post))) / len(words) >= SUPPORTED_WORD_SHARE


def example_leaks(answer: str, read: list[str]) -> list[str]:
    """Words of the prompt's worked examples in the answer that no read post has."""
    found = set().union(*(set(tokenize(text)) for text in read)) if read else set()
    return sorted((set(tokenize(_MARKERS.sub(" ", answer))) & EXAMPLE_WORDS) - found)


class Command(BaseCommand):
    help = "Evaluate generated answers (gold-answer rate, citations, latency) on a BEIR set."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir", type=Path, metavar="DIR")
        parser.add_argument("--answers", type=Path, required=True, metavar="FILE")
        parser.add_argument("--lang", default=None, help="Gold answers' language key.")
        parser.add_argument("--limit", type=int, default=None, help="First N questions only.")
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")
        parser.add_argument(
            "--details", type=Path, metavar="FILE", help="One JSON line per question here."
        )

    def handle(self, *args, **options) -> None:
        folder: Path = options["dir"]
        collection = collection_from(folder)
        lang = options["lang"] or (folder.name.rsplit("-", 1)[-1] if "-" in folder.name else "en")
        gold = self._gold(options["answers"], lang)
        query_ids = [q for q in collection.queries if q in gold][: options["limit"]]
        if not query_ids:
            raise CommandError(f"{options['answers']}: no gold answers for this collection")
        model = settings.PLAZA_EMBED_MODEL
        encoder = indexes.encoder_for(model)
        doc_ids = list(collection.corpus)
        texts = [collection.corpus[d] for d in doc_ids]
        chat = chat_model()
        rows = []
        with tempfile.TemporaryDirectory(prefix="plaza-eval-answers-") as tmp:
            index, bm25 = index_corpus(
                texts,
                encode=encoder.encode,
                dim=encoder.dim,
                index_dir=Path(tmp) / "vectors",
                index_config=indexes.index_config(),
            )
            self.stderr.write(
                f"{folder.name}: {len(doc_ids)} passages, {len(query_ids)} questions; "
                f"answers by {chat.generator.model}"
            )
            for done, query_id in enumerate(query_ids, start=1):
                rows.append(
                    self._one(query_id, collection, index, bm25, encoder, chat, doc_ids, gold)
                )
                if done % 25 == 0:
                    self.stderr.write(f"  {done}/{len(query_ids)}")
            index.close()
        if options["details"]:
            with options["details"].open("w", encoding="utf-8") as out:
                for row in rows:
                    out.write(json.dumps(row["details"], ensure_ascii=False) + "\n")
        self._report(rows, options["json"], folder.name, lang)

    @staticmethod
    def _gold(path: Path, lang: str) -> dict[str, list[str]]:
        if not path.is_file():
            raise CommandError(f"--answers {path}: no such file")
        gold = {}
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CommandError(f"{path}:{number}: not JSON ({exc.msg})") from None
                if row.get(lang):
                    gold[str(row["_id"])] = [str(answer) for answer in row[lang]]
        return gold

    @staticmethod
    def _one(query_id, collection, index, bm25, encoder, chat, doc_ids, gold) -> dict:
        question = collection.queries[query_id]
        started = time.perf_counter()
        languages = indexes.encoder_languages(settings.PLAZA_EMBED_MODEL)
        ranked = hybrid_search(
            question,
            index=index,
            bm25=bm25,
            encode=encoder.encode,
            encoder_languages=languages,
            depth=100,
            detect=detect_language,
        )
        native = encoder_native(question, languages)
        picked = [
            f
            for f in ranked.fused
            if relevant(f.ranks, ranked.scores.get("dense", {}).get(f.id, 0.0), native=native)
        ][:ANSWER_SOURCES]
        sources = [
            Source(doc_ids[f.id - 1], "source", collection.corpus[doc_ids[f.id - 1]])
            for f in picked
        ]
        retrieval_ms = (time.perf_counter() - started) * 1000
        result = None
        for event in answer_from_sources(
            question=question,
            sources=sources,
            encode=encoder.encode,
            encoder_languages=languages,
            chat=chat,
            started=started,
            retrieval_ms=retrieval_ms,
        ):
            if event.kind == "done":
                result = event.result
        graded = {doc for doc, grade in collection.qrels[query_id].items() if grade > 0}
        cited = [sources[n - 1].id for n in result.citations]

        def holds_gold(text: str) -> bool:
            return any(fold(answer) in fold(text) for answer in gold[query_id])

        contains_gold = holds_gold(result.text)
        read = [s.text for s in result.sources]
        supported = [
            independently_supported(s.text, read[s.sources[0] - 1]) for s in result.sentences
        ]
        leaks = example_leaks(result.text, read)
        answer_language = detect_language(_MARKERS.sub(" ", result.text))
        return {
            "gold": contains_gold,
            "model_gold": holds_gold(result.model_text),
            "quoted": result.quoted,
            "sentences": len(supported),
            "supported": sum(supported),
            "language": answer_language,
            "leaks": leaks,
            "chars": len(result.text),
            "cut_short": result.cut_short,
            "cited": cited,
            "cited_relevant": sum(doc in graded for doc in cited),
            "written": bool(result.written_citations),
            "any_citation": bool(result.citations),
            "retrieved_relevant": any(s.id in graded for s in sources),
            "first_token_after_retrieval_ms": result.timings["first_token_ms"] - retrieval_ms,
            "total_ms": result.timings["total_ms"],
            "tokens": result.completion_tokens,
            "generation_s": (result.timings["total_ms"] - retrieval_ms) / 1000,
            "details": {
                "id": query_id,
                "question": question,
                "answer": result.text,
                "model_text": result.model_text,
                "style": result.style,
                "language": answer_language,
                "example_leaks": leaks,
                "gold": gold[query_id],
                "contains_gold": contains_gold,
                "read": [
                    {"id": s.id, "relevant": s.id in graded, "text": s.text} for s in result.sources
                ],
                "sentences": [
                    {
                        "text": s.text,
                        "sources": s.sources,
                        "written": s.written,
                        "origin": s.origin,
                        "independently_supported": ok,
                    }
                    for s, ok in zip(result.sentences, supported, strict=True)
                ],
                "rejected": [{"text": s.claim, "reason": s.reason} for s in result.rejected],
            },
        }

    def _report(self, rows: list[dict], as_json: bool, name: str, lang: str) -> None:
        n = len(rows)
        sentences = sum(r["sentences"] for r in rows)
        cited = sum(len(r["cited"]) for r in rows)
        tokens = sum(r["tokens"] for r in rows)
        seconds = sum(r["generation_s"] for r in rows)
        first = [r["first_token_after_retrieval_ms"] for r in rows]
        total = [r["total_ms"] for r in rows]
        figures = {
            "set": name,
            "questions": n,
            "gold_answer_rate": sum(r["gold"] for r in rows) / n,
            "citation_precision": (sum(r["cited_relevant"] for r in rows) / cited)
            if cited
            else 0.0,
            "no_valid_citation_written": sum(not r["written"] for r in rows) / n,
            "no_valid_citation": sum(not r["any_citation"] for r in rows) / n,
            "valid_citation": sum(r["any_citation"] for r in rows) / n,
            "supported_sentence_rate": (sum(r["supported"] for r in rows) / sentences)
            if sentences
            else 0.0,
            "language_match": sum(r["language"] == lang for r in rows) / n,
            "example_leaks": sum(bool(r["leaks"]) for r in rows),
            "quoted_only": sum(r["quoted"] for r in rows) / n,
            "gold_answer_rate_model_text": sum(r["model_gold"] for r in rows) / n,
            "cut_short": sum(r["cut_short"] for r in rows) / n,
            "answer_chars_max": max(r["chars"] for r in rows),
            "retrieved_a_relevant_post": sum(r["retrieved_relevant"] for r in rows) / n,
            "first_token_after_retrieval_ms_p50": statistics.median(first),
            "first_token_after_retrieval_ms_p95": _percentile(first, 95),
            "total_ms_p50": statistics.median(total),
            "total_ms_p95": _percentile(total, 95),
            "tokens_per_s": tokens / seconds if seconds else 0.0,
        }
        for key, value in figures.items():
            shown = f"{value:.3f}" if isinstance(value, float) else value
            self.stdout.write(f"{key:40} {shown}")
        if as_json:
            self.stdout.write(
                json.dumps(
                    {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
                )
            )
