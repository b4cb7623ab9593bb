"""What the answer views and API read from a request: who is asking, from where, and
which answers this browser session created.

An answer is readable by whoever asked for it (the signed-in user, or the browser session
that created it) and by staff; `answer_for` gives anyone else a 404.
"""

from __future__ import annotations

from uuid import UUID

from django.http import Http404, HttpRequest

from search.models import Answer
from search.selectors import answer_for_reader

SESSION_KEY = "plaza_answers"  # answer ids this browser session created
SESSION_KEEPS = 50  # the newest this many


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def answer_for(request: HttpRequest, answer_id: UUID | str) -> Answer:
    """The answer if this request may read it, else 404 (never 403: ids are not confirmed)."""
    answer = answer_for_reader(
        answer_id=answer_id,
        user=request.user,
        session_answer_ids=request.session.get(SESSION_KEY, []),
    )
    if answer is None:
        raise Http404("no such answer")
    return answer


def remember(request: HttpRequest, answer: Answer) -> None:
    """Let this browser session read the answer it just created."""
    ids = request.session.get(SESSION_KEY, [])[-(SESSION_KEEPS - 1) :]
    request.session[SESSION_KEY] = [*ids, str(answer.pk)]
