"""Search backends: where the index lives (search.backends.base says what one does).

from search.backends import search_backend
backend = search_backend()      # the one PLAZA_SEARCH_BACKEND names: faiss | postgres
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from search.backends.base import POST_ROW_FIELDS, Filters, Ranked, SearchBackend

__all__ = ["POST_ROW_FIELDS", "Filters", "Ranked", "SearchBackend", "search_backend"]


@cache
def _backend(name: str) -> SearchBackend:
    if name == "postgres":
        from search.backends.postgres import PostgresBackend

        return PostgresBackend()
    from search.backends.faiss import FaissBackend

    return FaissBackend()


def search_backend() -> SearchBackend:
    """The configured backend (one instance per process and name)."""
    return _backend(settings.PLAZA_SEARCH_BACKEND)
