"""python manage.py build_default_adapter [--steps N] [--output DIR] [--json]

Trains the default adapter Plaza ships (ads.services.default_adapter) on its own demo set,
ads/demo/adapter_set.csv, and writes it to ads/default_adapter/ (or --output) with its
manifest, plaza.json. Run it after changing the demo set or the prompts (ads.prompts):
tests/ads/test_default_adapter.py fails while the shipped adapter is older than either.
Progress prints as it trains; with --json the last line is the manifest.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ads.services.default_adapter import BUILD, SHIPPED_DIR, default_adapter_build
from ml.lora import TrainProgress


class Command(BaseCommand):
    help = "Train the shipped default ad adapter on Plaza's own demo set."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--steps", type=int, default=BUILD["steps"])
        parser.add_argument("--output", type=Path, default=SHIPPED_DIR, metavar="DIR")
        parser.add_argument("--json", action="store_true", help="End with the manifest as JSON.")

    def handle(self, *args, **options) -> None:
        if options["steps"] < 1:
            raise CommandError(f"--steps {options['steps']}: train at least one step")
        started = time.perf_counter()

        def progress(p: TrainProgress) -> None:
            if p.step == 1 or p.step % 10 == 0 or p.step == p.steps:
                elapsed = time.perf_counter() - started
                self.stderr.write(f"step {p.step}/{p.steps} loss {p.loss:.4f} ({elapsed:.0f} s)")

        try:
            manifest = default_adapter_build(
                steps=options["steps"], output=options["output"], on_progress=progress
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        metrics = manifest["metrics"]
        self.stderr.write(
            f"{options['output']}: eval loss base {metrics['base_eval_loss']:.3f} -> "
            f"adapter {metrics['eval_loss']:.3f}, {manifest['seconds']:.0f} s, "
            f"tasks {', '.join(manifest['tasks'])}"
        )
        if options["json"]:
            self.stdout.write(json.dumps(manifest))
