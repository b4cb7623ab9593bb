"""python manage.py reconcile [--inline] [--wait SECONDS] [--json]

Diffs the visible posts (ids and content) against the live index and queues every
difference for the index worker: missing posts are added, stale ones re-embedded,
removed ones deleted. Prints what it found; the last line is a summary.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ml.index import IndexLockedError
from search.models import IndexQueueEntry
from search.services.index_sync import index_flush
from search.services.reconcile import index_reconcile


class Command(BaseCommand):
    help = "Repair the search index against the database (missing, stale, removed posts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Apply the repairs in this process instead of the index worker "
            "(only when no index worker is running).",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait up to this long for the worker to apply the repairs.",
        )
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")

    def handle(self, *args, **options) -> None:
        report = index_reconcile()
        summary = report.summary()
        self.stdout.write(
            f"generation {summary['generation']}: {summary['posts']} visible posts, "
            f"{summary['vectors']} indexed"
        )
        for kind in ("missing", "stale", "removed"):
            ids = getattr(report, kind)
            if ids:
                sample = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
                self.stdout.write(f"  {kind}: {len(ids)} (post ids {sample})")
        applied = False
        if options["inline"] and summary["queued"]:
            try:
                index_flush(time_budget_s=float("inf"))
            except IndexLockedError as exc:
                raise CommandError(
                    f"{exc}. Run without --inline: the running worker applies the repairs."
                ) from None
            applied = True
        elif options["wait"] and summary["queued"]:
            deadline = time.monotonic() + options["wait"]
            while IndexQueueEntry.objects.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            applied = not IndexQueueEntry.objects.exists()
        summary["applied"] = applied
        state = "repaired" if applied else "queued for the index worker"
        self.stdout.write(
            f"missing {summary['missing']}, stale {summary['stale']}, removed "
            f"{summary['removed']}: {summary['queued']} {state}"
            if summary["queued"]
            else "index matches the database"
        )
        if options["json"]:
            self.stdout.write(json.dumps(summary))
