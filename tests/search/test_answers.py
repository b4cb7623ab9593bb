"""Answers through the API: created (rate-limited), written by the chain, read back,
followed as server-sent events (resumable), rated; failures end as failed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from search import answering
from search import answers as answer_services
from search.models import Answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def asker(make_user):
    user = make_user("asker")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.token.key}")
    client.user = user
    return client


def ask(client, question="how do I bake bread at home?"):
    response = client.post("/api/answers", {"q": question}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def events_of(response) -> list[tuple[str, dict]]:
    body = b"".join(response.streaming_content).decode()
    events = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_an_answer_is_written_and_read_back_with_checked_citations(indexed_posts, asker):
    """POST queues it; the run writes text, citations of retrieved posts, and timings."""
    created = ask(asker)
    assert created["status"] == "queued" and created["events_url"].endswith("/events")
    answer_services.answer_run(answer_id=created["id"])
    data = asker.get(f"/api/answers/{created['id']}").json()
    assert data["status"] == "done" and data["text"]
    retrieved = {r["post_id"] for r in data["retrieved"]}
    assert retrieved and {c["post_id"] for c in data["citations"]} <= retrieved
    assert all(data["timings"][key] is not None for key in data["timings"])
    answer = Answer.objects.get(pk=created["id"])
    assert {p.external_id for p in answer.cited_posts.all()} == {
        c["post_id"] for c in data["citations"]
    }


def test_the_event_stream_replays_and_resumes(indexed_posts, asker):
    """The stream sends the text as token events then one done event; Last-Event-ID
    (a character offset) resumes after what the client has."""
    created = ask(asker)
    answer_services.answer_run(answer_id=created["id"])
    events = events_of(asker.get(created["events_url"], HTTP_ACCEPT="text/event-stream"))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and "token" in kinds
    text = "".join(data["text"] for kind, data in events if kind == "token")
    assert text == events[-1][1]["text"]
    resumed = events_of(
        asker.get(created["events_url"], HTTP_ACCEPT="text/event-stream", HTTP_LAST_EVENT_ID="5")
    )
    assert "".join(d["text"] for k, d in resumed if k == "token") == text[5:]


def test_an_answer_resting_on_no_post_is_served_as_a_quote(indexed_posts, asker, monkeypatch):
    """The run saves the quote as the answer and the model's text for the log; the API
    says "quoted", and a finished stream sends it whole in "done", not as tokens that
    would append to what the model streamed."""
    real = answering.chat_model
    monkeypatch.setattr(answering, "chat_model", lambda: real(max_tokens=1))  # the real model
    created = ask(asker, "what did the heavy rain do to London?")
    answer_services.answer_run(answer_id=created["id"])
    answer = Answer.objects.get(pk=created["id"])
    assert answer.model_text and answer.text.startswith("The closest post says: “")
    data = asker.get(f"/api/answers/{created['id']}").json()
    assert data["quoted"] and data["text"] == answer.text and data["citations"]
    assert data["sentences"] == [
        {"text": answer.text, "sources": [data["citations"][0]["n"]], "supported": True}
    ]
    events = events_of(asker.get(created["events_url"], HTTP_ACCEPT="text/event-stream"))
    assert [kind for kind, _ in events] == ["done"] and events[0][1]["text"] == answer.text


def test_only_the_asker_and_staff_can_read_an_answer(indexed_posts, asker, make_user):
    """Another user (or nobody) gets 404 for someone's answer; staff can read it."""
    created = ask(asker)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {make_user('other').token.key}")
    assert other.get(f"/api/answers/{created['id']}").status_code == 404
    assert APIClient().get(f"/api/answers/{created['id']}").status_code == 404
    assert APIClient().post("/api/answers", {"q": "x"}, format="json").status_code in {401, 403}
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Token {make_user('boss', staff=True).token.key}")
    assert staff.get(f"/api/answers/{created['id']}").status_code == 200


def test_asking_too_often_is_refused_with_retry_after(indexed_posts, asker, settings):
    """Past PLAZA_ANSWERS_PER_MINUTE a user gets 429 and when to retry."""
    settings.PLAZA_ANSWERS_PER_MINUTE = 2
    ask(asker)
    ask(asker)
    response = asker.post("/api/answers", {"q": "one more?"}, format="json")
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 61


def test_a_bad_operator_is_a_400_naming_it(asker):
    response = asker.post("/api/answers", {"q": "vacunas since:2022-13-01"}, format="json")
    assert response.status_code == 400 and "since:2022-13-01" in response.json()["q"][0]


def test_feedback_is_recorded_once_per_user(indexed_posts, asker):
    """Rating twice replaces the first verdict."""
    created = ask(asker)
    url = f"/api/answers/{created['id']}/feedback"
    assert asker.post(url, {"helpful": True}, format="json").status_code == 201
    assert asker.post(url, {"helpful": False, "comment": "wrong"}, format="json").status_code == 201
    feedback = Answer.objects.get(pk=created["id"]).feedback.get()
    assert (feedback.helpful, feedback.comment) == (False, "wrong")


def test_a_failing_run_ends_failed_and_a_dead_worker_is_swept(indexed_posts, asker, monkeypatch):
    """An error marks the answer failed with the reason; an answer left running by a dead
    worker is failed by the sweep once it has been silent for STALE_AFTER."""
    created = ask(asker)

    def broken(**kwargs):
        raise RuntimeError("model exploded")
        yield  # a generator, like the real one

    monkeypatch.setattr(answer_services, "answer_stream", broken)
    with pytest.raises(RuntimeError):
        answer_services.answer_run(answer_id=created["id"])
    answer = Answer.objects.get(pk=created["id"])
    assert answer.status == "failed" and "model exploded" in answer.error

    stuck = ask(asker)
    Answer.objects.filter(pk=stuck["id"]).update(status="running")
    assert answer_services.answers_fail_stale() == 0  # still fresh
    Answer.objects.filter(pk=stuck["id"]).update(
        updated_at=timezone.now() - answer_services.STALE_AFTER - timedelta(seconds=1)
    )
    assert answer_services.answers_fail_stale() == 1
    assert Answer.objects.get(pk=stuck["id"]).status == "failed"


def test_the_answer_log_and_feedback_render_in_admin(client, make_user):
    """Staff see answers (filters by status and feedback) and the feedback list; the
    model's text is escaped there too."""
    from search.models import AnswerFeedback

    answer = Answer.objects.create(
        question="q?",
        text="<script>alert(1)</script> [1]",
        model_text="<i>invented</i>",
        status="done",
        model="m",
    )
    AnswerFeedback.objects.create(answer=answer, helpful=False, comment="<b>bad</b>")
    client.force_login(make_user("root", superuser=True))
    for params in ({}, {"status": "done"}, {"feedback": "down"}, {"feedback": "none"}):
        assert client.get("/admin/search/answer/", params).status_code == 200
    quoted = client.get("/admin/search/answer/", {"quoted": "yes"}).content.decode()
    own = client.get("/admin/search/answer/", {"quoted": "no"}).content.decode()
    assert "q?" in quoted and "q?" not in own
    page = client.get(f"/admin/search/answer/{answer.pk}/change/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "&lt;i&gt;invented&lt;/i&gt;" in page
    feedback = client.get("/admin/search/answerfeedback/", {"helpful__exact": "0"})
    assert feedback.status_code == 200 and "&lt;b&gt;bad&lt;/b&gt;" in feedback.content.decode()
