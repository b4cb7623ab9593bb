"""The `postgres` backend: the index is tables in the posts' own PostgreSQL database.

One table per generation, `search_pg_<id>`: a row per visible post, with the columns its
filters need (author, language, time), what reconcile compares (content hash, time), the
post's words (a `tsvector` of ml.bm25.tokenize's tokens, positions kept for term
frequency) and its vector (`halfvec`, pgvector; half the bytes of `vector` for the same
recall at this dimension, measured in bench/search_backends.py). Indexes: HNSW on the
vector (inner product: vectors are unit length), GIN on the words, B-trees on author and
language with time (the author's covering the vector, for exact per-author search).

Designed for Citus: the table is range-partitioned by `created_at`
(PLAZA_PG_PARTITION_MONTHS a partition, made on first write), its only constraint is the
primary key (post_id, created_at), which holds both the distribution column and the
partition key, and it has no foreign key; `post_id` is the distribution column that
co-locates it with the posts (README, "Production").

Reads hold no state but a few seconds' cache of the corpus figures BM25 needs: any number
of web processes and index workers share the database. Filters are SQL: a filter that
leaves few posts is searched exactly; otherwise HNSW's iterative scan keeps walking the
graph until the page is full, and a page that still comes back short is searched
exactly (so is a table of at most EXACT_BELOW posts, as the faiss backend's unsealed
segment is). Lexical ranking is BM25 (Lucene's, as bm25s computes it for the `faiss`
backend) over PostgreSQL's full-text index: the GIN index finds the posts holding a query
word; term frequencies, document lengths and document frequencies come from the table.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from ml.bm25 import contains_phrase, tokenize, words
from posts.models import Post
from search.backends.base import Filters, Ranked, SearchBackend
from search.models import IndexGeneration

logger = logging.getLogger(__name__)

EXACT_BELOW = 10_000  # a filter leaving at most this many posts is searched exactly
# A table's document count and mean length (BM25's) are counted per query while small, and
# trusted for STATS_CACHE_S once it holds STATS_CACHE_FROM documents (a few seconds' drift
# of the corpus figures moves no ranking there; a new post is matched at once either way).
STATS_CACHE_S = 5.0
STATS_CACHE_FROM = 10_000
K1, B = 1.2, 0.75  # BM25, as the faiss backend's bm25s builds

_stats: dict[str, tuple[float, int, float]] = {}  # table -> (read at, documents, mean length)
_partitions: set[str] = set()  # partitions this process knows exist
_lock = threading.Lock()


def table_of(generation: IndexGeneration) -> str:
    return f"search_pg_{int(generation.pk)}"


def lexeme(token: str) -> str:
    """`token` as a quoted tsvector / tsquery lexeme (taken as it is, never normalised)."""
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def lexemes_of(text: str) -> tuple[str, int]:
    """The tsvector literal of `text`'s tokens with their positions, and its token count
    (an empty post counts one, as in ml.bm25)."""
    positions: dict[str, list[int]] = {}
    tokens = tokenize(text)
    for at, token in enumerate(tokens[:16383], start=1):  # tsvector's largest position
        positions.setdefault(token, []).append(at)
    literal = " ".join(f"{lexeme(t)}:{','.join(map(str, p[:256]))}" for t, p in positions.items())
    return literal, max(1, len(tokens))


def vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in np.asarray(vector, np.float32).tolist()) + "]"


def partition_bounds(moment: datetime) -> tuple[datetime, datetime, str]:
    """The partition holding `moment`: [start, end) and its name suffix."""
    months = settings.PLAZA_PG_PARTITION_MONTHS
    moment = moment.astimezone(UTC)
    index = (moment.year * 12 + moment.month - 1) // months * months
    start = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
    end_index = index + months
    end = datetime(end_index // 12, end_index % 12 + 1, 1, tzinfo=UTC)
    return start, end, f"{start:%Y%m}"


def _execute(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


class PostgresBackend(SearchBackend):
    name = "postgres"
    concurrent_writers = True

    # --- filters -----------------------------------------------------------------------------

    @staticmethod
    def _where(filters: Filters) -> tuple[str, list]:
        clauses, params = ["TRUE"], []
        if filters.author_ids is not None:
            clauses.append("author_id = ANY(%s)")
            params.append(list(filters.author_ids))
        if filters.lang:
            clauses.append("lang = %s")
            params.append(filters.lang)
        if filters.since is not None:
            clauses.append("created_at >= %s")
            params.append(filters.since)
        if filters.until is not None:
            clauses.append("created_at < %s")
            params.append(filters.until)
        if filters.allow_ids is not None:
            clauses.append("post_id = ANY(%s)")
            params.append(np.asarray(filters.allow_ids, np.int64).tolist())
        if filters.deny_ids is not None and len(filters.deny_ids):
            clauses.append("post_id <> ALL(%s)")
            params.append(np.asarray(filters.deny_ids, np.int64).tolist())
        return " AND ".join(clauses), params

    def _few(self, table: str, filters: Filters) -> bool:
        """Whether the filters (or the whole table) leave at most EXACT_BELOW posts,
        counted up to that."""
        if not filters.any:
            return self._corpus(table)[0] <= EXACT_BELOW
        key = ("pg-few", table)
        if key not in filters.cache:
            where, params = self._where(filters)
            (count,) = _execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {where} LIMIT %s) AS f",
                [*params, EXACT_BELOW + 1],
            )[0]
            filters.cache[key] = count <= EXACT_BELOW
        return filters.cache[key]

    # --- reads -------------------------------------------------------------------------------

    def dense(self, generation, vector, *, depth, filters) -> Ranked:
        table = table_of(generation)
        where, params = self._where(filters)
        query = vector_literal(vector)
        exact = self._few(table, filters)
        rows = self._nearest(table, where, params, query, depth, exact=exact)
        if len(rows) < depth and filters.any and not exact:
            rows = self._nearest(table, where, params, query, depth, exact=True)
        if not rows:
            return Ranked.empty()
        return Ranked(
            np.fromiter((r[0] for r in rows), np.int64, len(rows)),
            np.fromiter((-r[1] for r in rows), np.float32, len(rows)),
        )

    def _nearest(self, table, where, params, query, depth, *, exact) -> list[tuple]:
        # The exact search orders by an expression the HNSW index cannot serve.
        distance = "(embedding <#> %s::halfvec) + 0" if exact else "embedding <#> %s::halfvec"
        ef = min(1000, max(settings.PLAZA_PG_EF_SEARCH, depth))
        with transaction.atomic(), connection.cursor() as cursor:
            # SET LOCAL (not set_config()): Citus forwards it to the shards' nodes when
            # citus.propagate_set_commands = local.
            cursor.execute(  # one round trip: no parameters, so several statements
                f"SET LOCAL hnsw.ef_search = {int(ef)};"
                " SET LOCAL hnsw.iterative_scan = relaxed_order;"
                f" SET LOCAL hnsw.max_scan_tuples = {int(settings.PLAZA_PG_MAX_SCAN_TUPLES)}"
            )
            # relaxed_order returns the graph's order, nearly sorted: sorted again here.
            cursor.execute(
                f"WITH hits AS MATERIALIZED (SELECT post_id, {distance} AS d FROM {table}"
                f" WHERE {where} ORDER BY {distance} LIMIT %s)"
                " SELECT post_id, d FROM hits ORDER BY d, post_id",
                [query, *params, query, depth],
            )
            return cursor.fetchall()

    def _corpus(self, table: str) -> tuple[int, float]:
        """(documents, mean length) of the table, re-counted every STATS_CACHE_S."""
        read_at, n_docs, avgdl = _stats.get(table, (0.0, 0, 1.0))
        if time.monotonic() - read_at > STATS_CACHE_S:
            n_docs, avgdl = _execute(f"SELECT count(*), coalesce(avg(doc_len), 1) FROM {table}")[0]
            n_docs, avgdl = int(n_docs), float(avgdl)
            if n_docs >= STATS_CACHE_FROM:
                _stats[table] = (time.monotonic(), n_docs, avgdl)
        return n_docs, avgdl

    def lexical(self, generation, query, *, depth, filters) -> Ranked:
        table = table_of(generation)
        counts = Counter(tokenize(query))
        if not counts:
            return Ranked.empty()
        terms = sorted(counts)
        n_docs, avgdl = self._corpus(table)
        if not n_docs:
            return Ranked.empty()
        # Document frequencies over the whole generation: one scan of the posts holding any
        # query word (the GIN index finds them), counted per word (an aggregate each shard
        # of a Citus cluster computes on its own).
        counts_sql = ", ".join("count(*) FILTER (WHERE lexemes @@ %s::tsquery)" for _ in terms)
        found = _execute(
            f"SELECT {counts_sql} FROM {table} WHERE lexemes @@ %s::tsquery",
            [*(lexeme(t) for t in terms), " | ".join(lexeme(t) for t in terms)],
        )[0]
        frequencies = dict(zip(terms, found, strict=True))
        present = [t for t in terms if frequencies.get(t)]
        if not present:
            return Ranked.empty()
        weights = [
            counts[t] * math.log(1 + (n_docs - frequencies[t] + 0.5) / (frequencies[t] + 0.5))
            for t in present
        ]
        where, params = self._where(filters)
        any_term = " | ".join(lexeme(t) for t in present)
        rows = _execute(
            f"""
            WITH q(term, weight) AS (SELECT * FROM unnest(%s::text[], %s::float8[])),
            m AS (
                SELECT post_id, lang, doc_len, lexemes FROM {table}
                WHERE lexemes @@ %s::tsquery AND {where}
            )
            SELECT m.post_id, m.lang,
                   sum(q.weight * u.tf / (u.tf + %s * (1 - %s + %s * m.doc_len / %s))) AS score
            FROM m
            CROSS JOIN LATERAL (
                SELECT lexeme, cardinality(positions) AS tf FROM unnest(m.lexemes)
            ) AS u
            JOIN q ON q.term = u.lexeme
            GROUP BY m.post_id, m.lang
            ORDER BY score DESC, m.post_id
            LIMIT %s
            """,
            [present, weights, any_term, *params, K1, B, B, avgdl, depth],
        )
        return Ranked(
            np.fromiter((r[0] for r in rows), np.int64, len(rows)),
            np.fromiter((r[2] for r in rows), np.float32, len(rows)),
            [r[1] or "" for r in rows],
        )

    def phrase_ids(self, generation, phrase) -> np.ndarray:
        phrase_words = words(phrase)
        if not phrase_words:
            return np.empty(0, np.int64)
        tokens = sorted(set(tokenize(phrase)))
        table = table_of(generation)
        posts = Post._meta.db_table
        sql = f"SELECT g.post_id, p.text FROM {table} g JOIN {posts} p ON p.id = g.post_id"
        params: list = []
        if tokens:  # candidates hold every indexed word; a phrase of stopwords checks all
            sql += " WHERE g.lexemes @@ %s::tsquery"
            params.append(" & ".join(lexeme(t) for t in tokens))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = [
                pk for pk, text in cursor.fetchall() if contains_phrase(words(text), phrase_words)
            ]
        return np.asarray(sorted(found), np.int64)

    def ids(self, generation) -> np.ndarray:
        rows = _execute(f"SELECT post_id FROM {table_of(generation)} ORDER BY post_id")
        return np.fromiter((r[0] for r in rows), np.int64, len(rows))

    def size(self, generation) -> int:
        return int(_execute(f"SELECT count(*) FROM {table_of(generation)}")[0][0])

    def stats(self, generation) -> dict:
        table = table_of(generation)
        # A partitioned table holds nothing itself: its partitions hold the rows and indexes.
        partitions, size = _execute(
            "SELECT count(*), coalesce(sum(pg_total_relation_size(inhrelid)), 0)"
            " FROM pg_inherits WHERE inhparent = %s::regclass",
            [table],
        )[0]
        vectors = self.size(generation)
        return {
            "vectors": vectors,
            "lexical_docs": vectors,
            "partitions": int(partitions),
            "table_bytes": int(size or 0),
        }

    # --- writes ------------------------------------------------------------------------------

    def _ensure_partitions(self, table: str, moments) -> None:
        wanted = {partition_bounds(m) for m in moments}
        for start, end, suffix in sorted(wanted):
            name = f"{table}_{suffix}"
            if name in _partitions:
                continue
            with transaction.atomic():
                # One creator at a time: concurrent CREATE ... IF NOT EXISTS can still race.
                _execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
                _execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table}"
                    " FOR VALUES FROM (%s) TO (%s)",
                    [start, end],
                )
            with _lock:
                _partitions.add(name)

    def upsert(self, generation, rows, vectors) -> None:
        if not rows:
            return
        table = table_of(generation)
        rows_vectors = sorted(zip(rows, vectors, strict=True), key=lambda rv: rv[0]["id"])
        self._ensure_partitions(table, [r["created_at"] for r, _ in rows_vectors])
        ids, times, authors, langs, hashes, lengths, lexemes, embeddings = ([] for _ in range(8))
        for row, vector in rows_vectors:
            literal, length = lexemes_of(row["text"])
            ids.append(row["id"])
            times.append(row["created_at"])
            authors.append(row["author_id"])
            langs.append(row.get("lang") or "")
            hashes.append(row["content_hash"])
            lengths.append(length)
            lexemes.append(literal)
            embeddings.append(vector_literal(vector))
        with transaction.atomic():
            # A post whose time changed moves partition: its old row goes first.
            _execute(
                f"DELETE FROM {table} AS t USING unnest(%s::bigint[], %s::timestamptz[])"
                " AS n(id, at) WHERE t.post_id = n.id AND t.created_at <> n.at",
                [ids, times],
            )
            _execute(
                f"""
                INSERT INTO {table}
                    (post_id, created_at, author_id, lang, content_hash, doc_len, lexemes,
                     embedding)
                SELECT id, at, author, lang, hash, len, lex::tsvector, emb::halfvec
                FROM unnest(%s::bigint[], %s::timestamptz[], %s::bigint[], %s::text[],
                            %s::text[], %s::int[], %s::text[], %s::text[])
                    AS n(id, at, author, lang, hash, len, lex, emb)
                ON CONFLICT (post_id, created_at) DO UPDATE SET
                    author_id = EXCLUDED.author_id, lang = EXCLUDED.lang,
                    content_hash = EXCLUDED.content_hash, doc_len = EXCLUDED.doc_len,
                    lexemes = EXCLUDED.lexemes, embedding = EXCLUDED.embedding
                """,
                [ids, times, authors, langs, hashes, lengths, lexemes, embeddings],
            )

    def delete(self, generation, ids) -> None:
        if ids:
            _execute(f"DELETE FROM {table_of(generation)} WHERE post_id = ANY(%s)", [sorted(ids)])

    # --- generations -------------------------------------------------------------------------

    def generation_create(self, generation, *, bulk=False) -> None:
        table = table_of(generation)
        with transaction.atomic():
            _execute("CREATE EXTENSION IF NOT EXISTS vector")
            _execute(
                f"""
                CREATE TABLE {table} (
                    post_id bigint NOT NULL,
                    created_at timestamptz NOT NULL,
                    author_id bigint NOT NULL,
                    lang varchar(16) NOT NULL DEFAULT '',
                    content_hash varchar(64) NOT NULL,
                    doc_len integer NOT NULL,
                    lexemes tsvector NOT NULL,
                    embedding halfvec({int(generation.dim)}) NOT NULL,
                    PRIMARY KEY (post_id, created_at)
                ) PARTITION BY RANGE (created_at)
                """
            )
            # Covering: an author's posts are searched exactly from the index alone (an
            # index-only scan reads the author's entries side by side, not a heap page a post).
            _execute(
                f"CREATE INDEX {table}_author ON {table} (author_id, created_at)"
                " INCLUDE (post_id, embedding)"
            )
            _execute(f"CREATE INDEX {table}_lang ON {table} (lang, created_at)")
            if not bulk:
                self._search_indexes(table)

    def _search_indexes(self, table: str) -> None:
        """HNSW and GIN, on every partition (built once over a bulk-filled table)."""
        _execute(
            f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table}"
            " USING hnsw (embedding halfvec_ip_ops) WITH (m = %s, ef_construction = %s)",
            [settings.PLAZA_PG_HNSW_M, settings.PLAZA_PG_HNSW_EF_CONSTRUCTION],
        )
        _execute(f"CREATE INDEX IF NOT EXISTS {table}_words ON {table} USING gin (lexemes)")

    def generation_finish(self, generation) -> None:
        table = table_of(generation)
        _execute(f"SET maintenance_work_mem = '{settings.PLAZA_PG_BUILD_MEMORY}'")
        try:
            self._search_indexes(table)
        finally:
            _execute("RESET maintenance_work_mem")
        if connection.in_atomic_block:  # VACUUM cannot run in a transaction
            _execute(f"ANALYZE {table}")
        else:  # and the visibility map it sets lets index-only scans skip the heap
            _execute(f"VACUUM (ANALYZE) {table}")

    def generation_drop(self, generation) -> None:
        table = table_of(generation)
        _execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        with _lock:
            _partitions.difference_update({p for p in _partitions if p.startswith(f"{table}_")})
        _stats.pop(table, None)

    def generation_exists(self, generation) -> bool:
        return _execute("SELECT to_regclass(%s) IS NOT NULL", [table_of(generation)])[0][0]

    def diff(self, generation):
        table = table_of(generation)
        posts = Post._meta.db_table
        visible = "NOT p.is_hidden AND p.deleted_at IS NULL"
        missing = _execute(
            f"SELECT p.id FROM {posts} p WHERE {visible}"
            f" AND NOT EXISTS (SELECT 1 FROM {table} g WHERE g.post_id = p.id) ORDER BY p.id"
        )
        stale = _execute(
            f"SELECT g.post_id FROM {table} g JOIN {posts} p ON p.id = g.post_id"
            f" WHERE {visible} AND (g.content_hash <> p.content_hash"
            " OR g.created_at <> p.created_at) ORDER BY g.post_id"
        )
        removed = _execute(
            f"SELECT g.post_id FROM {table} g WHERE NOT EXISTS"
            f" (SELECT 1 FROM {posts} p WHERE p.id = g.post_id AND {visible}) ORDER BY g.post_id"
        )
        return [r[0] for r in missing], [r[0] for r in stale], [r[0] for r in removed]

    def compact(self, generation) -> int:
        return 0  # autovacuum reclaims deleted rows
