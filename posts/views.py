import logging

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from posts import selectors
from posts.models import Post
from search.selectors import similar_posts

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
SIMILAR_POSTS = 5


def post_list(request: HttpRequest) -> HttpResponse:
    """Recent public posts, newest first, optionally one author's or one language's."""
    author = request.GET.get("author", "").strip()[:64] or None
    lang = request.GET.get("lang", "").strip()[:16] or None
    posts = selectors.post_list(author=author, lang=lang)
    page = Paginator(posts, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request, "posts/post_list.html", {"page": page, "author": author or "", "lang": lang or ""}
    )


def post_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One public post and the posts closest to it in meaning. Hidden and deleted posts are
    not found."""
    post = get_object_or_404(selectors.post_queryset(), pk=pk)
    return render(request, "posts/post_detail.html", {"post": post, "similar": _similar_to(post)})


def _similar_to(post: Post) -> list[Post]:
    """Similar posts, or none: an empty or unreadable index never breaks the post page."""
    try:
        return similar_posts(post=post, k=SIMILAR_POSTS)
    except Exception:  # noqa: BLE001 - a side panel; the post itself still shows
        logger.exception("similar posts failed for post %s", post.pk)
        return []
