"""python manage.py import_posts PATH [PATH...]

Streams JSON Lines / CSV files (optionally .gz) in the posts schema into the database,
upserting in batches. Every rejected record is reported as `path:line: reason`; the
last line printed is `imported N, updated M, rejected K`. Exit status 0 when every
record was imported, 2 when some were rejected.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ops.commands import require_migrated
from posts.ingest import (
    SOURCE_RE,
    FileFormatError,
    PostRow,
    RowError,
    SourceFile,
    file_format,
    post_row_clean,
)
from posts.services import UpsertCounts, post_upsert_many

EXIT_REJECTED = 2


class Command(BaseCommand):
    help = "Import posts from JSON Lines or CSV files (optionally gzipped)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        parser.add_argument(
            "--source",
            default="plaza",
            help="Source the ids belong to, unless a record names its own (default: plaza).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.PLAZA_IMPORT_BATCH_SIZE,
            help="Posts per database transaction (default: %(default)s).",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="No progress bar, even on a terminal."
        )

    def handle(self, *args, **options) -> None:
        paths: list[Path] = options["paths"]
        source: str = options["source"]
        batch_size: int = options["batch_size"]
        if not SOURCE_RE.match(source):
            raise CommandError(f"--source {source!r}: use 1-32 letters, digits, '-' or '_'")
        if batch_size < 1:
            raise CommandError(f"--batch-size {batch_size}: must be at least 1")
        for path in paths:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            try:
                file_format(path)
            except FileFormatError as exc:
                raise CommandError(str(exc)) from None

        require_migrated()

        show_progress = sys.stderr.isatty() and not options["no_progress"]
        totals = UpsertCounts()
        rejected = 0
        for path in paths:
            counts, file_rejected = self._import_file(
                path, source=source, batch_size=batch_size, show_progress=show_progress
            )
            totals.created += counts.created
            totals.updated += counts.updated
            rejected += file_rejected

        self.stdout.write(
            f"imported {totals.created}, updated {totals.updated}, rejected {rejected}"
        )
        if rejected:
            sys.exit(EXIT_REJECTED)

    def _import_file(
        self, path: Path, *, source: str, batch_size: int, show_progress: bool
    ) -> tuple[UpsertCounts, int]:
        counts = UpsertCounts()
        rejected = 0
        batch: list[PostRow] = []
        max_chars = settings.PLAZA_POST_MAX_CHARS

        def report(line: int | None, reason: str) -> None:
            message = f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}"
            if show_progress:
                tqdm.write(message, file=sys.stderr)
            else:
                self.stderr.write(message)

        def flush() -> None:
            result = post_upsert_many(rows=batch)
            counts.created += result.created
            counts.updated += result.updated
            batch.clear()

        with (
            SourceFile(path) as source_file,
            tqdm(
                total=source_file.size,
                unit="B",
                unit_scale=True,
                desc=path.name,
                disable=not show_progress,
                file=sys.stderr,
            ) as progress,
        ):
            try:
                for record in source_file.records():
                    if record.fields is None:
                        rejected += 1
                        report(record.line, record.error or "unreadable")
                        continue
                    try:
                        batch.append(
                            post_row_clean(record.fields, source=source, max_chars=max_chars)
                        )
                    except RowError as exc:
                        rejected += 1
                        report(record.line, str(exc))
                        continue
                    if len(batch) >= batch_size:
                        flush()
                        progress.update(source_file.tell() - progress.n)
            except FileFormatError as exc:
                rejected += 1
                report(None, f"{exc}; stopped reading this file here")
            if batch:
                flush()
            progress.update(source_file.tell() - progress.n)
        return counts, rejected
