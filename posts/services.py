"""Writes to authors and posts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from posts.ingest import PostRow, post_content_hash
from posts.models import Author, Post

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
    updated, and the primary keys of every post written.
    """
    latest: dict[tuple[str, str], PostRow] = {}
    for row in rows:
        latest[(row.source, row.external_id)] = row
    if not latest:
        return UpsertCounts()

    ids_by_source: dict[str, list[str]] = defaultdict(list)
    for source, external_id in latest:
        ids_by_source[source].append(external_id)
    existing = 0
    for source, external_ids in ids_by_source.items():
        existing += Post.objects.filter(source=source, external_id__in=external_ids).count()

    author_ids = author_ids_ensure(handles=(row.author for row in latest.values()))
    now = timezone.now()
    posts = [
        Post(
            source=row.source,
            external_id=row.external_id,
            author_id=author_ids[row.author],
            text=row.text,
            lang=row.lang,
            created_at=row.created_at,
            likes=row.likes,
            reposts=row.reposts,
            replies=row.replies,
            content_hash=row.content_hash,
            ingested_at=now,
            updated_at=now,
        )
        for row in latest.values()
    ]
    Post.objects.bulk_create(
        posts,
        update_conflicts=True,
        unique_fields=["source", "external_id"],
        update_fields=UPSERT_UPDATE_FIELDS,
    )
    return UpsertCounts(
        created=len(posts) - existing,
        updated=existing + (len(rows) - len(latest)),
        post_ids=[post.pk for post in posts],
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


def post_save(*, post: Post, update_fields: list[str] | None = None) -> Post:
    """Save one post, keeping its content hash in step with its text."""
    post.content_hash = post_content_hash(lang=post.lang, text=post.text)
    post.save(update_fields=update_fields)
    return post


@transaction.atomic
def post_set_hidden(*, post_ids: Iterable[int], hidden: bool) -> int:
    """Hide or unhide posts; returns how many changed."""
    return (
        Post.objects.filter(pk__in=list(post_ids), deleted_at__isnull=True)
        .exclude(is_hidden=hidden)
        .update(is_hidden=hidden, updated_at=timezone.now())
    )


@transaction.atomic
def post_delete(*, post_ids: Iterable[int]) -> int:
    """Delete posts: they vanish from every page, search and answer.

    The row stays as a marker, so re-importing the same id does not bring it back.
    """
    now = timezone.now()
    return Post.objects.filter(pk__in=list(post_ids), deleted_at__isnull=True).update(
        deleted_at=now, updated_at=now
    )


@transaction.atomic
def post_restore(*, post_ids: Iterable[int]) -> int:
    """Undo a deletion made by mistake (staff only)."""
    return Post.objects.filter(pk__in=list(post_ids), deleted_at__isnull=False).update(
        deleted_at=None, updated_at=timezone.now()
    )
