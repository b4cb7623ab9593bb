"""The production server for real: `gunicorn -c config/gunicorn.py` (uvicorn workers on the
ASGI app) in a child process, on the test database.

One worker process follows many answers' event streams at once, sends each sentence as it
is written (nothing is held back until the end), and meanwhile still serves pages, static
files (WhiteNoise) and searches."""

from __future__ import annotations

import json
import queue
import threading

import pytest
import requests
from django.utils import timezone

from search.models import Answer
from tests.integration.workers import WebServer

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

READERS = 12  # more streams than one worker has threads for sync views by default
WAIT_S = 60  # liveness bound for each step; the steps take well under a second


@pytest.fixture
def server(tmp_path):
    web = WebServer(tmp_path)
    try:
        web.wait_ready(WAIT_S)
        yield web.url
    finally:
        web.stop()


def _follow(url: str, token: str, events: queue.Queue) -> None:
    """Read one event stream to its end, putting (answer url, event, data) as they come."""
    headers = {"Authorization": f"Token {token}", "Accept": "text/event-stream"}
    with requests.get(url, headers=headers, stream=True, timeout=WAIT_S) as response:
        events.put((url, "status", response.status_code))
        kind = None
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith(":"):
                events.put((url, "comment", line))
            elif line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.put((url, kind, json.loads(line.removeprefix("data: "))))
                if kind in ("done", "failed"):
                    return


def _next(events: queue.Queue, kind: str, urls: set[str]) -> dict[str, object]:
    """The next `kind` event of each of `urls` (other events in between are skipped)."""
    seen: dict[str, object] = {}
    while set(seen) != urls:
        url, got, data = events.get(timeout=WAIT_S)
        if got == kind and url in urls:
            seen.setdefault(url, data)
    return seen


def test_one_worker_streams_many_answers_as_written_and_serves_beside_them(server, make_user):
    user = make_user("reader")
    answers = [
        Answer.objects.create(
            user=user, question=f"question {i}", status="running", started_at=timezone.now()
        )
        for i in range(READERS)
    ]
    events: queue.Queue = queue.Queue()
    urls = {f"{server}/api/answers/{answer.pk}/events": answer for answer in answers}
    readers = [
        threading.Thread(target=_follow, args=(url, user.token.key, events), daemon=True)
        for url in urls
    ]
    for reader in readers:
        reader.start()
    statuses = _next(events, "status", set(urls))
    assert set(statuses.values()) == {200}
    _next(events, "comment", set(urls))  # every stream is open and flowing

    # With every stream open, the same worker still answers everything else.
    assert requests.get(f"{server}/healthz", timeout=WAIT_S).json()["database"] is True
    page = requests.get(f"{server}/", timeout=WAIT_S)
    assert page.status_code == 200 and "<html" in page.text.lower()
    css = requests.get(f"{server}/static/plaza.css", timeout=WAIT_S)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    search = requests.get(
        f"{server}/api/search", params={"q": "bread"},
        headers={"Authorization": f"Token {user.token.key}"}, timeout=WAIT_S,
    )  # fmt: skip
    assert search.status_code == 200 and search.json()["results"] == []

    # A sentence written reaches its reader while the answer is still running.
    for answer in answers:
        Answer.objects.filter(pk=answer.pk).update(text=f"First sentence of {answer.question}.")
    tokens = _next(events, "token", set(urls))
    for url, data in tokens.items():
        assert data == {"text": f"First sentence of {urls[url].question}."}

    Answer.objects.filter(pk__in=[a.pk for a in answers]).update(
        status="done", finished_at=timezone.now()
    )
    done = _next(events, "done", set(urls))
    for url, data in done.items():
        assert data["status"] == "done"
        assert data["text"] == f"First sentence of {urls[url].question}."
    for reader in readers:
        reader.join(timeout=WAIT_S)
        assert not reader.is_alive()
