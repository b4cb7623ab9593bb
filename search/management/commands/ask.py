"""python manage.py ask "question" [--json]

Answers a question from the posts, as the search page does: retrieves, streams the
model's answer to the terminal as it is written, then lists the posts it cites. With
--json the last line is one JSON object:
{"answer": str, "citations": [{"n": int, "post_id": str}], "retrieved": [str],
 "timings": {"retrieval_ms": float, "first_token_ms": float, "total_ms": float},
 "model": str}
(post ids are the posts' external ids).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.answering import answer_stream
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
        if result.model_text:
            self.stdout.write("(That rested on no post; instead:)")
            self.stdout.write(result.text)
        for n in result.citations:
            post = result.hits[n - 1].post
            quote = post.text[:100]
            self.stdout.write(f"[{n}] @{post.author.handle} ({post.external_id}): {quote}")
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
                    },
                    ensure_ascii=False,
                )
            )
