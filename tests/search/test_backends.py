"""The search backends' own machinery: the postgres backend's SQL against the faiss
backend's engines (BM25 scores, exact filtered nearest neighbours), its partitions and
its reconcile anti-joins; the literals it builds."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from django.db import transaction

from ml.bm25 import BM25Index
from posts.models import Post
from search import indexes
from search.backends import Filters, search_backend
from search.backends.postgres import lexeme, lexemes_of, partition_bounds, table_of
from search.services import index_sync

QUERIES = ["vacunas gripe Madrid", "football crowd", "bread bread fermentation", "café Brasil"]


def test_lexemes_keep_positions_and_quote_what_tsvector_would_parse():
    literal, length = lexemes_of("Bread, BREAD and more bread: l'pain")
    assert literal == "'bread':1,2,4 'more':3 'pain':5" and length == 5
    assert lexeme("o'neil\\x") == "'o''neil\\\\x'"
    assert lexemes_of("a the of")[1] == 1  # no indexed word: counts one, as ml.bm25


def test_partitions_are_whole_blocks_of_months(settings):
    settings.PLAZA_PG_PARTITION_MONTHS = 3
    start, end, suffix = partition_bounds(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    assert (start, end, suffix) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        "202610",
    )
    settings.PLAZA_PG_PARTITION_MONTHS = 1
    assert partition_bounds(datetime(2027, 1, 1, tzinfo=UTC))[2] == "202701"


@pytest.mark.integration
@pytest.mark.backend("postgres")
@pytest.mark.django_db
def test_bm25_in_sql_scores_as_bm25s_does(indexed_posts):
    """The postgres backend's BM25 (PostgreSQL full text) gives the faiss backend's
    bm25s scores and order on the same posts."""
    generation = indexes.live_generation(fresh=True)
    posts = list(Post.objects.visible().order_by("id"))
    reference = BM25Index.build([p.pk for p in posts], [p.text for p in posts])
    for query in QUERIES:
        ours = search_backend().lexical(generation, query, depth=20, filters=Filters())
        scores, ids = reference.search(query, 20)
        assert ours.ids.tolist() == ids.tolist(), query
        np.testing.assert_allclose(ours.scores, scores, rtol=1e-4)


@pytest.mark.integration
@pytest.mark.backend("postgres")
@pytest.mark.django_db
def test_filtered_dense_search_is_exact_and_never_short(indexed_posts):
    """With a filter, the nearest posts are exactly those brute force finds among the
    matching posts, all of them when fewer than asked."""
    generation = indexes.live_generation(fresh=True)
    encoder = indexes.encoder_for(generation.embed_model)
    query = encoder.encode_queries(["rain and floods"])[0]
    for filters, matching in (
        (Filters(lang="es"), Post.objects.filter(lang="es")),
        (
            Filters(author_ids=[indexed_posts["3"].author_id]),
            Post.objects.filter(author__handle="ben"),
        ),
        (
            Filters(since=datetime(2022, 1, 10, tzinfo=UTC)),
            Post.objects.filter(created_at__gte=datetime(2022, 1, 10, tzinfo=UTC)),
        ),
    ):
        matching = list(matching.order_by("id"))
        vectors = encoder.encode([p.text for p in matching])
        order = np.argsort(-(vectors @ query), kind="stable")
        expected = [matching[i].pk for i in order]
        found = search_backend().dense(generation, query, depth=50, filters=filters)
        assert found.ids.tolist() == expected, filters
        np.testing.assert_allclose(found.scores, np.sort(vectors @ query)[::-1], atol=2e-3)


@pytest.mark.integration
@pytest.mark.backend("postgres")
@pytest.mark.django_db
def test_posts_land_in_their_time_partition_and_move_with_their_time(indexed_posts):
    from django.db import connection

    generation = indexes.live_generation(fresh=True)
    table = table_of(generation)
    post = indexed_posts["5"]
    with transaction.atomic():  # an import that corrected the post's time
        Post.objects.filter(pk=post.pk).update(created_at=datetime(2025, 7, 4, 9, tzinfo=UTC))
        index_sync.index_request(post_ids=[post.pk])
    index_sync.index_flush()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass ORDER BY 1",
            [table],
        )
        partitions = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"SELECT tableoid::regclass::text, created_at FROM {table} WHERE post_id = %s",
            [post.pk],
        )
        rows = cursor.fetchall()
    assert partitions == [f"{table}_202201", f"{table}_202507"]
    stats = search_backend().stats(generation)
    assert stats["partitions"] == 2 and stats["vectors"] == len(indexed_posts)
    assert stats["table_bytes"] > 0  # summed over the partitions
    assert rows == [(f"{table}_202507", datetime(2025, 7, 4, 9, tzinfo=UTC))]
    assert search_backend().diff(generation) == ([], [], [])
