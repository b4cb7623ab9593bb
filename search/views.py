from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from search import selectors
from search.forms import MAX_PAGE, PAGE_SIZE, SearchForm
from search.http import answer_for, client_ip, remember
from search.query import QueryError
from search.services.answers import AnswerRateLimited, answer_create, answer_feedback_record


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


@require_POST
def answer_create_view(request: HttpRequest) -> JsonResponse:
    """Start an answer for the search page (CSRF-protected; signed in or not, rate-limited
    per user or address). The browser then follows its event stream."""
    question = request.POST.get("q", "").strip()
    if not question:
        return JsonResponse({"q": ["Ask something."]}, status=400)
    try:
        answer = answer_create(question=question, user=request.user, client_ip=client_ip(request))
    except QueryError as exc:
        return JsonResponse({"q": [str(exc)]}, status=400)
    except AnswerRateLimited as exc:
        response = JsonResponse({"detail": str(exc)}, status=429)
        response["Retry-After"] = str(exc.retry_after_s)
        return response
    remember(request, answer)
    return JsonResponse(
        {"id": str(answer.pk), "events_url": reverse("api-answer-events", args=[answer.pk])},
        status=202,
    )


@require_POST
def answer_feedback_view(request: HttpRequest, answer_id) -> JsonResponse:
    """Up or down on an answer this browser asked for (CSRF-protected)."""
    answer = answer_for(request, answer_id)
    try:
        payload = json.loads(request.body or b"{}")
        helpful = bool(int(payload["helpful"]))
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"helpful": ["Send 1 or 0."]}, status=400)
    comment = str(payload.get("comment", ""))[:2000]
    answer_feedback_record(answer=answer, user=request.user, helpful=helpful, comment=comment)
    return JsonResponse({"helpful": helpful}, status=201)
