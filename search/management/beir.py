"""The BEIR folder argument of the evaluation commands."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from ml.evaluation import BeirCollection, BeirFormatError, load_beir


def collection_from(folder: Path) -> BeirCollection:
    """The collection in `folder`, or a CommandError that says what is wrong and where."""
    if not folder.is_dir():
        raise CommandError(f"{folder}: not a folder (expected a BEIR collection)")
    try:
        collection = load_beir(folder)
    except BeirFormatError as exc:
        raise CommandError(str(exc)) from None
    if not collection.queries:
        raise CommandError(f"{folder}: no judged queries (qrels/test.tsv matches none)")
    return collection
