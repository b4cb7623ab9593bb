"""Fixtures for the search tests: an index of their own, and a small indexed corpus."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

# (id, author, lang, text, day in Jan 2022, likes)
CORPUS = [
    ("1", "ana", "es", "Las vacunas contra la gripe llegan a las farmacias de Madrid", 3, 120),
    ("2", "ana", "es", "La tercera dosis de la vacuna se adelanta para mayores de 60 años", 5, 80),
    ("3", "ben", "en", "Football match results: Liverpool beat Arsenal two goals to one", 6, 45),
    ("4", "ben", "en", "The Champions League final drew a record football crowd", 8, 300),
    ("5", "cleo", "en", "My sourdough bread recipe needs a long cold fermentation", 9, 12),
    ("6", "cleo", "en", "Baking bread at home: flour, water, salt and patience", 10, 7),
    ("7", "dan", "en", "Heavy rain floods the streets of London again this morning", 11, 64),
    ("8", "dan", "es", "Lluvias torrenciales inundan las calles de Valencia", 12, 51),
    (
        "9",
        "eve",
        "en",
        "<script>alert(1)</script> bread crumbs are a cross-site scripting joke",
        13,
        1,
    ),
    ("10", "eve", "en", "New electric car batteries charge in ten minutes", 14, 90),
    ("11", "fin", "en", "Coffee prices rise after a poor harvest in Brazil", 15, 33),
    ("12", "fin", "es", "El precio del café sube tras una mala cosecha en Brasil", 16, 28),
]


@pytest.fixture
def index_dir(settings, tmp_path):
    """A data folder (index, BM25 builds) of this test's own; handles closed around it."""
    from search import indexes

    indexes.close_all()
    settings.DATA_DIR = tmp_path
    yield tmp_path
    indexes.close_all()


def corpus_rows(corpus=CORPUS):
    from posts.ingest import PostRow

    return [
        PostRow(
            source="plaza",
            external_id=external_id,
            author=author,
            text=text,
            lang=lang,
            created_at=datetime(2022, 1, day, 12, tzinfo=UTC),
            likes=likes,
            reposts=likes // 10,
            replies=likes // 20,
        )
        for external_id, author, lang, text, day, likes in corpus
    ]


@pytest.fixture
def corpus_posts(db, index_dir):
    """The corpus written as posts, not indexed yet: a dict of external id to Post."""
    from posts.models import Post
    from posts.services import post_upsert_many

    post_upsert_many(rows=corpus_rows())
    return {post.external_id: post for post in Post.objects.select_related("author")}


@pytest.fixture
def indexed_posts(corpus_posts):
    """The corpus flushed into a live generation (the real encoder, BM25)."""
    from search.services import index_sync

    report = index_sync.index_flush()
    assert report.upserted == len(CORPUS)
    return corpus_posts
