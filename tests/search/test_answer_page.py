"""The search page's answer: the page asks for one (CSRF, session), follows it through the
event stream it alone may read, and rates it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from search.services import answers as answer_services

pytestmark = pytest.mark.django_db


@pytest.mark.integration
def test_the_search_page_offers_the_answer_box(indexed_posts):
    """A query shows the answer section (with the question, filters as operators) and
    loads the script that streams it; the second page does not."""
    page = Client().get("/search", {"q": "bread", "lang": "en"}).content.decode()
    assert 'id="answer"' in page and 'data-question="bread lang:en"' in page
    assert "search.js" in page
    assert 'id="answer"' not in Client().get("/search", {"q": "bread", "page": 2}).content.decode()


@pytest.mark.integration
def test_a_browser_session_starts_follows_and_rates_its_answer(indexed_posts):
    """POST (with CSRF) → 202 and an events URL this session may read; another browser
    gets 404; feedback is recorded."""
    browser = Client(enforce_csrf_checks=True)
    browser.get("/search", {"q": "bread"})
    token = browser.cookies["csrftoken"].value
    refused = browser.post("/search/answers", {"q": "how to bake bread?"})
    assert refused.status_code == 403  # no CSRF token
    created = browser.post(
        "/search/answers", {"q": "how to bake bread?"}, HTTP_X_CSRFTOKEN=token
    ).json()
    answer_services.answer_run(answer_id=created["id"])
    stream = browser.get(created["events_url"], HTTP_ACCEPT="text/event-stream")
    body = b"".join(stream.streaming_content).decode()
    assert "event: done" in body
    assert Client().get(created["events_url"]).status_code == 404
    rated = browser.post(
        f"/search/answers/{created['id']}/feedback",
        json.dumps({"helpful": 1}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert rated.status_code == 201


@pytest.mark.integration
def test_the_page_answer_is_rate_limited_per_address(indexed_posts, settings):
    """Signed-out visitors share their address's limit: 429 with Retry-After past it."""
    settings.PLAZA_ANSWERS_PER_MINUTE = 1
    visitor = Client()
    assert visitor.post("/search/answers", {"q": "bread"}).status_code == 202
    limited = Client().post("/search/answers", {"q": "bread"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
