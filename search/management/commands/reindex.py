"""python manage.py reindex [--model SETTING] [--no-progress]

Builds a complete new index generation from the visible posts, beside the live one, and
swaps it in when it is complete: search never goes down. With --model (default: the
PLAZA_EMBED_MODEL setting) it moves the index to another embedding model. Changes made
during the build are re-queued for the index worker after the swap.
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ml.registry import ModelNotFound
from search.services.generations import generation_build


class Command(BaseCommand):
    help = "Rebuild the search index as a new generation and swap it in when complete."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default=None, help="Embedding model setting.")
        parser.add_argument(
            "--no-progress", action="store_true", help="No progress bar, even on a terminal."
        )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        bar = tqdm(
            unit="post",
            desc="embedding",
            disable=options["no_progress"] or not sys.stderr.isatty(),
            file=sys.stderr,
        )

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            generation = generation_build(model=options["model"], progress=progress)
        except ModelNotFound as exc:
            raise CommandError(f"--model: {exc}") from None
        finally:
            bar.close()
        self.stdout.write(
            f"generation {generation.name} is live: {generation.posts_done} posts, model "
            f"{generation.embed_model}, {time.monotonic() - started:.1f} s"
        )
