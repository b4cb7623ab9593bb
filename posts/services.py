"""Writes to authors and posts.

Every write announces the posts it changed (`posts.signals.posts_changed`) inside its
transaction, bulk upserts included; whoever keeps something derived from posts listens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from posts.ingest import PostRow, post_content_hash
from posts.models import Author, Post
from posts.signals import posts_changed_send

# Fields an upsert may change on an existing post. Moderation state (hidden, deleted)
# is not among them: re-importing a file never brings a removed post back.
UPSERT_UPDATE_FIELDS = [
    "author",
    "text",
    "lang",
    "created_at",
    "likes",
    "reposts",
    "replies",
    "content_hash",
    "updated_at",
]


@dataclass
class UpsertCounts:
    created: int = 0
    updated: int = 0
    post_ids: list[int] = field(default_factory=list)

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.created += other.created
        self.updated += other.updated
        self.post_ids.extend(other.post_ids)
        return self


def author_ids_ensure(*, handles: Iterable[str]) -> dict[str, int]:
    """The id of each handle, creating the authors not seen before."""
    handles = set(handles)
    Author.objects.bulk_create(
        [Author(handle=handle) for handle in sorted(handles)], ignore_conflicts=True
    )
    return dict(Author.objects.filter(handle__in=handles).values_list("handle", "id"))


@transaction.atomic
def post_upsert_many(*, rows: Sequence[PostRow]) -> UpsertCounts:
    """Insert new posts and update existing ones (same source and external id) in bulk.

    Later rows win over earlier ones with the same id. Returns how many were created and
    updated, and the primary keys of every post written (in no particular order).
    """
    latest: dict[tuple[str, str], PostRow] = {}
    for row in rows:
        latest[(row.source, row.external_id)] = row
    if not latest:
        return UpsertCounts()
    author_ids = author_ids_ensure(handles=(row.author for row in latest.values()))
    upsert = _upsert_postgres if connection.vendor == "postgresql" else _upsert_orm
    counts = upsert(list(latest.values()), author_ids, timezone.now())
    posts_changed_send(post_ids=counts.post_ids)
    counts.updated += len(rows) - len(latest)  # earlier copies, overwritten within the batch
    return counts


def _upsert_orm(rows: list[PostRow], author_ids: dict[str, int], now) -> UpsertCounts:
    ids_by_source: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        ids_by_source[row.source].append(row.external_id)
    existing = sum(
        Post.objects.filter(source=source, external_id__in=external_ids).count()
        for source, external_ids in ids_by_source.items()
    )
    posts = [
        Post(
            **{name: getattr(row, name) for name in _ROW_FIELDS},
            author_id=author_ids[row.author],
            content_hash=row.content_hash,
            ingested_at=now,
            updated_at=now,
        )
        for row in rows
    ]
    Post.objects.bulk_create(
        posts,
        update_conflicts=True,
        unique_fields=["source", "external_id"],
        update_fields=UPSERT_UPDATE_FIELDS,
    )
    return UpsertCounts(
        created=len(posts) - existing,
        updated=existing,
        post_ids=[post.pk for post in posts],
    )


_ROW_FIELDS = ["source", "external_id", "text", "lang", "created_at", "likes", "reposts", "replies"]
_COPY_COLUMNS = [*_ROW_FIELDS, "author_id", "content_hash"]


def _upsert_postgres(rows: list[PostRow], author_ids: dict[str, int], now) -> UpsertCounts:
    """COPY the batch into a temporary table, then one INSERT ... ON CONFLICT from it.

    Binary-free COPY runs in psycopg's C code; the ORM's bulk_create spends most of its
    time building and quoting SQL in Python (bench/ingest.py measures both).
    """
    table = Post._meta.db_table
    columns = ", ".join(_COPY_COLUMNS)
    updates = ", ".join(
        f"{Post._meta.get_field(name).column} = EXCLUDED.{Post._meta.get_field(name).column}"
        for name in UPSERT_UPDATE_FIELDS
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS post_upsert_batch ("
            " source varchar(32), external_id varchar(64), text text, lang varchar(16),"
            " created_at timestamptz, likes integer, reposts integer, replies integer,"
            " author_id bigint, content_hash varchar(64)"
            ") ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY post_upsert_batch ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    (
                        row.source, row.external_id, row.text, row.lang, row.created_at,
                        row.likes, row.reposts, row.replies,
                        author_ids[row.author], row.content_hash,
                    )
                )  # fmt: skip
        # Table and column names come from the model; values are bound parameters.
        upsert = (
            f"INSERT INTO {table} ({columns}, is_hidden, ingested_at, updated_at)"  # noqa: S608
            f" SELECT {columns}, false, %s, %s FROM post_upsert_batch"
            f" ON CONFLICT (source, external_id) DO UPDATE SET {updates}"
            " RETURNING id, (xmax = 0)"
        )
        cursor.execute(upsert, [now, now])
        written = cursor.fetchall()
        cursor.execute("TRUNCATE post_upsert_batch")
    created = sum(1 for _, inserted in written if inserted)
    return UpsertCounts(
        created=created, updated=len(written) - created, post_ids=[pk for pk, _ in written]
    )


EDITABLE_FIELDS = {"text", "lang", "likes", "reposts", "replies", "is_hidden"}


@transaction.atomic
def post_update(*, post: Post, changes: dict) -> Post:
    """Apply checked edits (text, lang, counts, is_hidden) to one post."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"cannot edit {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(post, name, value)
    return post_save(post=post, update_fields=[*changes, "content_hash", "updated_at"])


@transaction.atomic
def post_save(*, post: Post, update_fields: list[str] | None = None) -> Post:
    """Save one post, keeping its content hash in step with its text, and announce it."""
    post.content_hash = post_content_hash(lang=post.lang, text=post.text)
    post.save(update_fields=update_fields)
    posts_changed_send(post_ids=[post.pk])
    return post


@transaction.atomic
def post_set_hidden(*, post_ids: Iterable[int], hidden: bool) -> int:
    """Hide or unhide posts; returns how many changed."""
    changing = Post.objects.filter(pk__in=list(post_ids), deleted_at__isnull=True).exclude(
        is_hidden=hidden
    )
    changed_ids = list(changing.values_list("pk", flat=True))
    posts_changed_send(post_ids=changed_ids)
    return Post.objects.filter(pk__in=changed_ids).update(
        is_hidden=hidden, updated_at=timezone.now()
    )


@transaction.atomic
def post_delete(*, post_ids: Iterable[int]) -> int:
    """Delete posts: they vanish from every page, search and answer.

    The row stays as a marker, so re-importing the same id does not bring it back.
    """
    now = timezone.now()
    post_ids = list(post_ids)
    posts_changed_send(post_ids=post_ids)
    return Post.objects.filter(pk__in=post_ids, deleted_at__isnull=True).update(
        deleted_at=now, updated_at=now
    )


@transaction.atomic
def post_restore(*, post_ids: Iterable[int]) -> int:
    """Undo a deletion made by mistake (staff only)."""
    post_ids = list(post_ids)
    posts_changed_send(post_ids=post_ids)
    return Post.objects.filter(pk__in=post_ids, deleted_at__isnull=False).update(
        deleted_at=None, updated_at=timezone.now()
    )
