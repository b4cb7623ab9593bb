"""python manage.py evaluate_adapter --adapter NAME --dataset CSV [--split all|eval] [--json]

Eval loss (token-weighted, over the headline tokens) of the base model and of the base
with the adapter, on the cleaned rows of any CSV shaped like the training data (`desc`,
`output`). --split eval takes only the rows the training split holds out. With --json the
last line is {"adapter": str, "base_eval_loss": float, "eval_loss": float, "n": int}
(n: examples evaluated).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ads.models import Adapter
from ads.services.drafting import adapter_folder
from ads.services.training import TrainingError, dataset_for
from ml.lora import evaluate_loss
from ops.commands import require_migrated


class Command(BaseCommand):
    help = "Compare an adapter's eval loss with its base model's on a CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--adapter", required=True, metavar="NAME")
        parser.add_argument("--dataset", required=True, metavar="CSV", help="A CSV, or 'demo'.")
        parser.add_argument("--split", choices=["all", "eval"], default="all")
        parser.add_argument("--limit", type=int, default=None, help="First N examples only.")
        parser.add_argument("--max-length", type=int, default=128, help="Tokens per example.")
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")

    def handle(self, *args, **options) -> None:
        require_migrated()
        adapter = Adapter.objects.filter(name=options["adapter"]).first()
        if adapter is None:
            names = ", ".join(Adapter.objects.values_list("name", flat=True)[:20]) or "none yet"
            raise CommandError(f"--adapter {options['adapter']}: no such adapter ({names})")
        try:
            dataset = dataset_for(options["dataset"])
        except TrainingError as exc:
            raise CommandError(str(exc).replace("dataset:", "--dataset:", 1)) from None
        rows = dataset.eval if options["split"] == "eval" else dataset.train + dataset.eval
        examples = [row.example() for row in rows][: options["limit"]]
        common = {
            "cache_dir": str(settings.PLAZA_MODEL_CACHE),
            "max_length": options["max_length"],
            "device": settings.PLAZA_DEVICE,
        }
        self.stderr.write(f"{len(examples)} examples; base {adapter.base_model}")
        base = evaluate_loss(adapter.base_model, None, examples, **common)
        tuned = evaluate_loss(adapter.base_model, adapter_folder(adapter), examples, **common)
        self.stdout.write(
            f"{adapter.name}: eval loss base {base.loss:.4f} (perplexity {base.perplexity:.1f})"
            f" → adapter {tuned.loss:.4f} (perplexity {tuned.perplexity:.1f}) on "
            f"{len(examples)} examples"
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "adapter": adapter.name,
                        "base_eval_loss": round(base.loss, 6),
                        "eval_loss": round(tuned.loss, 6),
                        "n": len(examples),
                    }
                )
            )
