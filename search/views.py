from __future__ import annotations

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from search import selectors
from search.forms import MAX_PAGE, PAGE_SIZE, SearchForm
from search.query import QueryError


def _page_link(request: HttpRequest, page: int) -> str:
    """This search's query string, on another page (the query and filters kept)."""
    params: QueryDict = request.GET.copy()
    params["page"] = str(page)
    return "?" + params.urlencode()


def search(request: HttpRequest) -> HttpResponse:
    """The search page: a query box, filters, and a page of ranked posts. Public."""
    form = SearchForm(request.GET or None)
    context: dict = {"form": form, "results": None, "error": None}
    if form.is_bound and form.is_valid() and not form.is_empty():
        page = form.page_number
        try:
            results = selectors.search_posts(
                query=form.parsed_query(),
                k=PAGE_SIZE,
                offset=(page - 1) * PAGE_SIZE,
                recency=form.cleaned_data["recency"],
            )
        except QueryError as exc:
            context["error"] = str(exc)
        else:
            context |= {
                "results": results,
                "page": page,
                "previous_link": _page_link(request, page - 1) if page > 1 else None,
                "next_link": (
                    _page_link(request, page + 1) if results.has_more and page < MAX_PAGE else None
                ),
            }
    return render(request, "search/search.html", context)
