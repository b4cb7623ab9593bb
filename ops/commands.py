"""What every management command checks before it touches the database."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def database_needs_migrate() -> bool:
    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def require_migrated() -> None:
    """Stops a command on a database not set up or not up to date, saying what to run."""
    if database_needs_migrate():
        raise CommandError(
            "The database is not set up or not up to date: run `python manage.py migrate` first."
        )
