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


def post_refs(*, post_ids: Iterable[int]) -> list[dict]:
    """id, source and external id of each post, in the order of `post_ids`."""
    post_ids = list(post_ids)
    refs = {
        ref["id"]: ref
        for ref in Post.objects.filter(pk__in=post_ids).values("id", "source", "external_id")
    }
    return [refs[pk] for pk in post_ids if pk in refs]


def author_with_counts(*, handle: str) -> Author | None:
    return Author.objects.filter(handle__iexact=handle).annotate(post_count=Count("posts")).first()
