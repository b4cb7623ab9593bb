"""python manage.py train_adapter --dataset CSV --name NAME [--base MODEL] [--steps N] [--json]

Trains a LoRA adapter in this process (the gpu worker runs the same service for runs
started from the web): the CSV (`desc`, `output`; `industry`, `type` optional; `demo` for
the set shipped with Plaza) is cleaned, de-duplicated and split train/eval; progress and
loss print as it trains and are saved on a TrainingRun row; the adapter is saved in PEFT
format under the data dir and recorded as a `candidate`. Run it again with the same name
after an interruption and it resumes from the newest checkpoint. With --json the last line
is {"adapter": str, "steps": int, "seconds": float, "base_eval_loss": float,
"eval_loss": float, "path": str}. Exit status 1 when the run fails or is cancelled.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ads.models import Adapter, TrainingRun
from ads.services import training
from ads.services.drafting import adapter_folder
from ops.commands import require_migrated


class Command(BaseCommand):
    help = "Train a LoRA adapter for ad creative on a CSV of descriptions and headlines."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dataset", required=True, metavar="CSV", help="A CSV, 'demo', 'default', 'creatives'."
        )
        parser.add_argument("--name", required=True, help="The adapter's name (a slug).")
        parser.add_argument("--base", default=None, metavar="MODEL", help="Base model setting.")
        parser.add_argument("--steps", type=int, default=200)
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--grad-accum", type=int, default=1)
        parser.add_argument("--learning-rate", type=float, default=2e-4)
        parser.add_argument("--max-length", type=int, default=128, help="Tokens per example.")
        parser.add_argument("--rank", type=int, default=8, help="LoRA r.")
        parser.add_argument("--alpha", type=int, default=16, help="LoRA alpha.")
        parser.add_argument("--checkpoint-every", type=int, default=50)
        parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")

    def handle(self, *args, **options) -> None:
        require_migrated()
        name = options["name"]
        if options["steps"] < 1:
            raise CommandError(f"--steps {options['steps']}: train at least one step")
        run = (
            TrainingRun.objects.filter(adapter_name=name)
            .exclude(status__in=TrainingRun.finished_statuses())
            .first()
        )
        if run is None:
            run = self._create(options)
        else:
            self.stderr.write(
                f"{name}: resuming run {run.pk} (checkpoint at step {run.checkpoint_step})"
            )
        self.stderr.write(
            f"{name}: {run.train_examples} training / {run.eval_examples} evaluation examples, "
            f"{run.steps} steps on {run.base_model}"
        )
        run = training.training_run_execute(run_id=run.pk, on_progress=self._progress)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"{name}: run {run.pk} {run.status}: {run.error or 'stopped'}")
        adapter: Adapter = run.adapter
        results = run.results
        seconds = results.get("seconds", 0.0)
        self.stdout.write(
            f"{name}: {run.steps} steps in {seconds:.0f} s "
            f"({results.get('seconds_per_step', 0):.2f} s/step, "
            f"{results.get('tokens_per_s', 0):.0f} tokens/s)\n"
            f"eval loss: base {results['base_eval_loss']:.4f} → "
            f"adapter {results['eval_loss']:.4f} (perplexity "
            f"{results['base_eval_perplexity']:.1f} → {results['eval_perplexity']:.1f})\n"
            f"adapter: {adapter_folder(adapter)} ({adapter.size_bytes / 1e6:.1f} MB)"
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "adapter": adapter.name,
                        "steps": run.step,
                        "seconds": round(seconds, 2),
                        "base_eval_loss": results["base_eval_loss"],
                        "eval_loss": results["eval_loss"],
                        "path": str(adapter_folder(adapter)),
                    }
                )
            )

    def _progress(self, progress) -> None:
        if progress.step == 1 or progress.step % 10 == 0 or progress.step == progress.steps:
            self.stderr.write(
                f"  step {progress.step}/{progress.steps}  loss {progress.loss:.4f}  "
                f"{progress.tokens_per_s:.0f} tokens/s"
            )

    def _create(self, options) -> TrainingRun:
        parameters = {
            "batch_size": options["batch_size"],
            "grad_accum": options["grad_accum"],
            "learning_rate": options["learning_rate"],
            "max_length": options["max_length"],
            "r": options["rank"],
            "alpha": options["alpha"],
            "checkpoint_every": options["checkpoint_every"],
            "precision": options["precision"],
        }
        try:
            return training.training_run_create(
                adapter_name=options["name"],
                dataset=options["dataset"],
                steps=options["steps"],
                base_model=options["base"],
                parameters=parameters,
                enqueue=False,
            )
        except training.TrainingError as exc:
            raise CommandError(str(exc)) from None
