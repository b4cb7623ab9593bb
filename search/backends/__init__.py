"""Search backends: where the index lives (search.backends.base says what one does).

from search.backends import search_backend
backend = search_backend()      # the one PLAZA_SEARCH_BACKEND names: faiss | postgres
search_backend(generation)      # the one holding that generation (its `backend`)
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


def search_backend(generation=None) -> SearchBackend:
    """The configured backend, or the one holding `generation` (an IndexGeneration); one
    instance per process and name."""
    name = generation.backend if generation is not None else settings.PLAZA_SEARCH_BACKEND
    return _backend(name)
