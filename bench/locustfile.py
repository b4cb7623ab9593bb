"""The users bench/load.py sends at Plaza (locust). Run through bench/load.py, which starts
the server and passes these through the environment:

    PLAZA_LOAD_TOKEN     an API token of a staff user (searching, answers, posting)
    PLAZA_LOAD_QUERIES   "same": every search asks the first query; "varied" (default): a
                         rotating list, each user starting at its own place
    PLAZA_LOAD_FRESH_S   how long a poster waits for its post to be searchable (default 30)
    PLAZA_LOAD_MIX       "6,2,2": exactly that many of each user below (else locust's weights)

Users: `Searcher` (GET /api/search, back to back), `Asker` (POST /api/answers, then follows
the answer's event stream to its end; records the first token and the whole answer as
their own entries), `Poster` (POST /api/posts one new post with a word no other post has,
then searches for that word until the post is found; records that lag as "freshness").
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from datetime import UTC, datetime

from locust import FastHttpUser, HttpUser, between, constant, events, task

TOKEN = os.environ.get("PLAZA_LOAD_TOKEN", "")
HEADERS = {"Authorization": f"Token {TOKEN}", "Accept": "application/json"}
FRESH_S = float(os.environ.get("PLAZA_LOAD_FRESH_S") or 30)
QUERIES = [
    "vacunas covid tercera dosis",
    "inflación y precio de la gasolina",
    "invasión rusa de Ucrania",
    "flight delayed for hours no explanation",
    "lost my luggage",
    "cancelled flight need a refund",
    "great crew, thank you",
    "wifi not working on the plane",
    'vacunas "tercera dosis" lang:es',
    "covid -vacuna lang:es",
    "customer service on hold lang:en",
    "precio de la luz since:2022-01-01",
]
QUESTIONS = [
    "What do people say about lost luggage?",
    "¿Qué se dice de la tercera dosis de la vacuna?",
    "Why are flights being cancelled?",
    "¿Cómo está el precio de la gasolina?",
]
_starts = itertools.count()


def _queries() -> itertools.cycle:
    if os.environ.get("PLAZA_LOAD_QUERIES") == "same":
        return itertools.cycle(QUERIES[:1])
    start = next(_starts) % len(QUERIES)
    return itertools.cycle(QUERIES[start:] + QUERIES[:start])


def _record(name: str, started: float, *, exception: Exception | None = None) -> None:
    events.request.fire(
        request_type="TIMED",
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=0,
        exception=exception,
        context={},
    )


class Searcher(FastHttpUser):
    """A closed loop of searches: the next as soon as the last answers (as wrk does)."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.queries = _queries()

    @task
    def search(self) -> None:
        self.client.get(
            "/api/search", params={"q": next(self.queries), "k": 10}, headers=HEADERS,
            name="GET /api/search",
        )  # fmt: skip


class Asker(HttpUser):
    """Asks a question, then reads the answer's server-sent events to the end."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.questions = itertools.cycle(QUESTIONS)

    @task
    def ask(self) -> None:
        with self.client.post(
            "/api/answers", json={"q": next(self.questions)}, headers=HEADERS,
            name="POST /api/answers", catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code != 202:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            events_url = response.json()["events_url"]
        started = time.perf_counter()
        first = None
        outcome = None
        with self.client.get(
            events_url, headers={**HEADERS, "Accept": "text/event-stream"}, stream=True,
            name="GET /api/answers/{id}/events", catch_response=True,
        ) as stream:  # fmt: skip
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("event: token") and first is None:
                    first = time.perf_counter()
                    _record("answer: first sentence", started)
                elif line.startswith("event: "):
                    outcome = line.removeprefix("event: ")
                    if outcome in ("done", "failed"):
                        break
            if outcome != "done":
                stream.failure(f"the stream ended with {outcome!r}")
        problem = None if outcome == "done" else RuntimeError(f"answer ended {outcome!r}")
        _record("answer: whole", started, exception=problem)


class Poster(FastHttpUser):
    """Posts a new post, then searches for it until it is found: the freshness lag."""

    wait_time = between(2, 4)

    @task
    def post(self) -> None:
        word = f"loadword{uuid.uuid4().hex[:12]}"
        now = datetime.now(UTC).isoformat()
        body = {
            "posts": [
                {
                    "id": f"load-{word}",
                    "author": "load_tester",
                    "text": f"Checking in from the load test: {word} is my code word today.",
                    "created_at": now,
                    "lang": "en",
                    "source": "loadtest",
                }
            ]
        }
        response = self.client.post(
            "/api/posts", data=json.dumps(body),
            headers={**HEADERS, "Content-Type": "application/json"}, name="POST /api/posts",
        )  # fmt: skip
        if response.status_code not in (200, 201):
            return
        started = time.perf_counter()
        while time.perf_counter() - started < FRESH_S:
            found = self.client.get(
                "/api/search", params={"q": word, "k": 1}, headers=HEADERS,
                name="GET /api/search (own post)",
            )  # fmt: skip
            if found.status_code == 200 and found.json()["results"]:
                _record("freshness: posted to searchable", started)
                return
            time.sleep(0.25)
        _record(
            "freshness: posted to searchable", started,
            exception=TimeoutError(f"{word} not searchable after {FRESH_S:.0f} s"),
        )  # fmt: skip


# PLAZA_LOAD_MIX="6,2,2": exactly that many Searchers, Askers and Posters (bench/load.py).
_mix = [int(count) for count in os.environ.get("PLAZA_LOAD_MIX", "").split(",") if count]
if _mix:
    Searcher.fixed_count, Asker.fixed_count, Poster.fixed_count = _mix
