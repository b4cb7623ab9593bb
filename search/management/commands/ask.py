"""python manage.py ask "question" [--json]

Answers a question from the posts, as the search page does: retrieves, streams the
answer's checked sentences to the terminal as they are composed, then lists the posts it
cites with the sentence of each that it rests on. With --json the last line is one JSON
object:
{"answer": str, "citations": [{"n": int, "post_id": str}], "retrieved": [str],
 "timings": {"retrieval_ms": float, "first_token_ms": float, "total_ms": float},
 "model": str, "style": str, "quoted": bool, "cut_short": bool}
(post ids are the posts' external ids; style: extractive, generative or mixed; quoted:
only the posts' own words; cut_short: the deadline stopped the model).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.chain import answer_stream
from search.query import QueryError


class Command(BaseCommand):
    help = "Answer a question from the posts, citing them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("question")
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")

    def handle(self, *args, **options) -> None:
        question = options["question"].strip()
        if not question:
            raise CommandError('question: empty; ask something, e.g. ask "what happened?"')
        result = None
        try:
            for event in answer_stream(question=question):
                if event.kind == "token":
                    self.stdout.write(event.text, ending="")
                    self.stdout.flush()
                elif event.kind == "done":
                    result = event.result
        except QueryError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("")
        if result.cut_short:
            self.stdout.write("(The time limit stopped the model; completed from the posts.)")
        elif result.quoted:
            self.stdout.write("(Quoted from the posts.)")
        for n in result.citations:
            post = result.hits[n - 1].post
            evidence = " … ".join(result.evidence(n))
            self.stdout.write(f"[{n}] @{post.author.handle} ({post.external_id}): {evidence}")
        if options["json"]:
            timings = {
                key: round(result.timings[key], 1)
                for key in ("retrieval_ms", "first_token_ms", "total_ms")
            }
            self.stdout.write(
                json.dumps(
                    {
                        "answer": result.text,
                        "citations": [
                            {"n": n, "post_id": result.hits[n - 1].post.external_id}
                            for n in result.citations
                        ],
                        "retrieved": [hit.post.external_id for hit in result.hits],
                        "timings": timings,
                        "model": result.model,
                        "style": result.style,
                        "quoted": result.quoted,
                        "cut_short": result.cut_short,
                    },
                    ensure_ascii=False,
                )
            )
