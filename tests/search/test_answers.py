"""Answers through the API: created (rate-limited), written by the chain, read back,
followed as server-sent events (resumable), rated; failures end as failed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from search import chain as answering
from search.models import Answer
from search.services import answers as answer_services

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


@pytest.mark.integration
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


@pytest.mark.integration
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


@pytest.mark.integration
def test_an_unsupported_model_sentence_is_kept_out_and_logged(indexed_posts, asker, monkeypatch):
    """The model (its text replaced by an invention) writes a sentence no
    read post supports: the row, the API and the stream show only the posts' sentences,
    each with its evidence; the invention stays on the row with its reason."""
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    from ml.langchain import PlazaChatModel

    class Inventing(PlazaChatModel):
        """The real chat model class with its text replaced (the real model's run of the
        same path: test_answering.py)."""

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            text = "The flu shot is safe with rain in London [1]."
            yield ChatGenerationChunk(message=AIMessageChunk(content=text))

    monkeypatch.setattr(answering, "chat_model", Inventing)
    monkeypatch.setattr(answering, "resolve_style", lambda style, chat: "generative")
    created = ask(asker, "what did the heavy rain do to London?")
    answer_services.answer_run(answer_id=created["id"])
    answer = Answer.objects.get(pk=created["id"])
    assert answer.status == "done" and answer.style == "generative"
    assert "safe" not in answer.text and answer.text.startswith("“")
    assert answer.rejected == [
        {
            "text": "The flu shot is safe with rain in London.",
            "reason": answer.rejected[0]["reason"],
        }
    ]
    assert "'safe'" in answer.rejected[0]["reason"]
    data = asker.get(f"/api/answers/{created['id']}").json()
    assert data["quoted"] and data["text"] == answer.text and data["style"] == "generative"
    assert "rejected" not in data and data["cut_short"] is False
    (cited,) = data["citations"]
    post = next(r for r in data["retrieved"] if r["n"] == cited["n"])
    assert post["post_id"] == "7" and post["created_at"].startswith("2022-01-11")
    assert cited["evidence"] and all(e in post["text"] for e in cited["evidence"])
    assert [s["origin"] for s in data["sentences"]] == ["post"] * len(data["sentences"])
    events = events_of(asker.get(created["events_url"], HTTP_ACCEPT="text/event-stream"))
    streamed = "".join(d["text"] for k, d in events if k == "token")
    assert streamed == answer.text and events[-1][0] == "done"


@pytest.mark.integration
def test_an_answer_running_past_its_deadline_is_failed_when_read(indexed_posts, asker, settings):
    """A running answer whose worker died is failed once past its deadline plus a grace,
    by the reader's next poll (the event stream or the answer), without waiting for the
    beat sweep."""
    settings.PLAZA_ANSWER_DEADLINE_S = 1
    created = ask(asker)
    Answer.objects.filter(pk=created["id"]).update(status="running", started_at=timezone.now())
    assert answer_services.answer_fail_if_overdue(answer_id=created["id"]).status == "running"
    overdue = timezone.now() - timedelta(seconds=2) - answer_services.OVERDUE_GRACE
    Answer.objects.filter(pk=created["id"]).update(started_at=overdue)
    events = events_of(asker.get(created["events_url"], HTTP_ACCEPT="text/event-stream"))
    assert asker.get(f"/api/answers/{created['id']}").json()["status"] == "failed"
    other = ask(asker)  # and a poll of the answer itself does the same
    Answer.objects.filter(pk=other["id"]).update(status="running", started_at=overdue)
    assert asker.get(f"/api/answers/{other['id']}").json()["status"] == "failed"
    assert events[-1][0] == "failed" and "worker stopped" in events[-1][1]["error"]


@pytest.mark.integration
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


@pytest.mark.integration
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


@pytest.mark.integration
def test_feedback_is_recorded_once_per_user(indexed_posts, asker):
    """Rating twice replaces the first verdict."""
    created = ask(asker)
    url = f"/api/answers/{created['id']}/feedback"
    assert asker.post(url, {"helpful": True}, format="json").status_code == 201
    assert asker.post(url, {"helpful": False, "comment": "wrong"}, format="json").status_code == 201
    feedback = Answer.objects.get(pk=created["id"]).feedback.get()
    assert (feedback.helpful, feedback.comment) == (False, "wrong")


@pytest.mark.integration
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
    answer.rejected = [{"text": "<u>made up</u>", "reason": "'up' is not in the post"}]
    answer.save(update_fields=["rejected"])
    kept_out = client.get("/admin/search/answer/", {"rejected": "yes"}).content.decode()
    clean = client.get("/admin/search/answer/", {"rejected": "no"}).content.decode()
    assert "q?" in kept_out and "q?" not in clean
    page = client.get(f"/admin/search/answer/{answer.pk}/change/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "&lt;i&gt;invented&lt;/i&gt;" in page and "&lt;u&gt;made up&lt;/u&gt;" in page
    feedback = client.get("/admin/search/answerfeedback/", {"helpful__exact": "0"})
    assert feedback.status_code == 200 and "&lt;b&gt;bad&lt;/b&gt;" in feedback.content.decode()
