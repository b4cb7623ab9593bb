from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from posts import selectors
from posts.panels import post_panels

PAGE_SIZE = 25


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
    """One public post and the panels other apps show beside it (posts.panels: search's
    similar posts). Hidden and deleted posts are not found."""
    post = get_object_or_404(selectors.post_queryset(), pk=pk)
    return render(
        request, "posts/post_detail.html", {"post": post, "panels": post_panels(post=post)}
    )
