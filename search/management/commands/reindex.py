"""python manage.py reindex [--model SETTING] [--fan-out [--timeout S]] [--no-progress]

Builds a complete new index generation from the visible posts, beside the live one, and
swaps it in when it is complete: search never goes down. With --model (default: the
PLAZA_EMBED_MODEL setting) it moves the index to another embedding model. Changes made
during the build are re-queued for the index worker after the swap.

The build is split into chunks of PLAZA_INDEX_BUILD_CHUNK posts. By default this process
encodes them; with --fan-out they go to the `build` queue, every index and gpu worker
that is up takes chunks, and this command follows the generation's progress until it is live (exit
status 1 if it fails, or is not live within --timeout seconds; the build goes on).
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ml.registry import ModelNotFound
from search.models import IndexGeneration
from search.services.generations import generation_build, generation_build_fan_out


class Command(BaseCommand):
    help = "Rebuild the search index as a new generation and swap it in when complete."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", default=None, help="Embedding model setting.")
        parser.add_argument(
            "--fan-out",
            action="store_true",
            help="Send the chunks to the index workers and follow them (default: encode here).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=24 * 3600,
            help="With --fan-out: seconds to wait for the new generation (default a day).",
        )
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
            if options["fan_out"]:
                generation = self._follow(
                    generation_build_fan_out(model=options["model"]), progress, options["timeout"]
                )
            else:
                generation = generation_build(model=options["model"], progress=progress)
        except ModelNotFound as exc:
            raise CommandError(f"--model: {exc}") from None
        finally:
            bar.close()
        seconds = time.monotonic() - started
        self.stdout.write(
            f"generation {generation.name} is live: {generation.posts_done} posts, model "
            f"{generation.embed_model}, {seconds:.1f} s "
            f"({generation.posts_done / max(seconds, 1e-9):.0f} posts/s)"
        )

    def _follow(self, generation: IndexGeneration, progress, timeout: float) -> IndexGeneration:
        """Until the fanned-out build is live; CommandError if it fails or times out."""
        deadline = time.monotonic() + timeout
        while True:
            generation.refresh_from_db()
            progress(generation.posts_done, generation.posts_total)
            if generation.state == IndexGeneration.State.LIVE:
                return generation
            if generation.state == IndexGeneration.State.FAILED:
                raise CommandError(f"generation {generation.name} failed: {generation.error}")
            if time.monotonic() > deadline:
                raise CommandError(
                    f"generation {generation.name} is not live after {timeout:.0f} s "
                    f"({generation.chunks_done} of {generation.chunks_total} chunks done; "
                    "are index workers running?); it goes on building"
                )
            time.sleep(0.5)
