"""Reads of authors and posts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, QuerySet

from posts.models import Author, Post


def post_queryset(*, include_removed: bool = False) -> QuerySet[Post]:
    """Posts with their authors; hidden and deleted ones only when asked for."""
    posts = Post.objects.select_related("author")
    return posts if include_removed else posts.visible()


def post_list(
    *,
    include_removed: bool = False,
    author: str | None = None,
    lang: str | None = None,
    source: str | None = None,
    external_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Post]:
    """Posts matching every filter given, newest first."""
    posts = post_queryset(include_removed=include_removed)
    if author:
        posts = posts.filter(author__handle__iexact=author.removeprefix("@"))
    if lang:
        posts = posts.filter(lang=lang.lower())
    if source:
        posts = posts.filter(source=source)
    if external_id:
        posts = posts.filter(external_id=external_id)
    if since:
        posts = posts.filter(created_at__gte=since)
    if until:
        posts = posts.filter(created_at__lt=until)
    return posts.order_by("-created_at", "-id")


def post_refs(*, post_ids: Iterable[int]) -> dict[tuple[str, str], dict]:
    """{(source, external_id): {id, source, external_id}} for the given posts."""
    refs = Post.objects.filter(pk__in=list(post_ids)).values("id", "source", "external_id")
    return {(ref["source"], ref["external_id"]): ref for ref in refs}


def author_with_counts(*, handle: str) -> Author | None:
    return Author.objects.filter(handle__iexact=handle).annotate(post_count=Count("posts")).first()
