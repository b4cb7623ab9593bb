"""JSON API and event stream for answers.

    POST /api/answers                  {"q": "..."} -> 202 {"id", "status", "url", "events_url"}
    GET  /api/answers/{id}             the answer so far (or final), with citations and timings
    GET  /api/answers/{id}/events      text/event-stream: "token" events with the new text,
                                       then one "done" (or "failed") with the whole answer;
                                       Last-Event-ID resumes. The text only grows: each token
                                       is a checked sentence with its [n].
    POST /api/answers/{id}/feedback    {"helpful": true, "comment": "..."}

An answer is readable by whoever asked for it (the signed-in user, or the browser session
that created it) and by staff; anyone else gets 404. Creating answers is rate-limited
per user (signed out: per address): 429 with Retry-After. The schema (/api/schema)
documents every answer, errors included.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ops.api_contract import (
    TEXT,
    StrictBooleanField,
    StrictCharField,
    StrictSerializer,
    error_headers,
    errors,
)
from search.http import answer_for, client_ip, remember
from search.models import Answer
from search.query import MAX_QUERY_CHARS, QueryError
from search.selectors import answer_retrieved_posts
from search.services.answers import (
    AnswerRateLimited,
    answer_create,
    answer_fail_if_overdue,
    answer_feedback_record,
)

STREAM_POLL_S = 0.2
STREAM_MAX_S = 300  # a client reconnects (Last-Event-ID) after this


def answer_data(answer: Answer, request: HttpRequest | None = None) -> dict:
    posts = answer_retrieved_posts(answer=answer)
    retrieved = []
    for n, pk in enumerate(answer.retrieved, start=1):
        post = posts.get(pk)
        if post is None:  # deleted since: its number stays, its text goes
            retrieved.append({"n": n, "removed": True})
            continue
        path = reverse("posts:detail", args=[post.pk])
        retrieved.append(
            {
                "n": n,
                "post_id": post.external_id,
                "id": post.pk,
                "author": post.author.handle,
                "created_at": post.created_at.isoformat(),
                "text": post.text,
                "url": request.build_absolute_uri(path) if request is not None else path,
            }
        )
    return {
        "id": str(answer.pk),
        "question": answer.question,
        "filters": answer.filters,
        "status": answer.status,
        "text": answer.text,
        # Every sentence shown is a post's own words (extractive, or the model's rejected).
        "quoted": bool(answer.sentences)
        and all(s.get("origin") == "post" for s in answer.sentences),
        "style": answer.style,
        # The deadline stopped the model; the answer was completed from the posts.
        "cut_short": answer.cut_short,
        "citations": [
            {
                "n": c["n"],
                "post_id": c["external_id"],
                "written": c["written"],
                "evidence": c.get("evidence", []),  # the post's sentences the answer rests on
            }
            for c in answer.citations
            if c["post"] in posts
        ],
        "retrieved": retrieved,
        "sentences": answer.sentences,
        "timings": {
            "retrieval_ms": answer.retrieval_ms,
            "first_token_ms": answer.first_token_ms,
            "total_ms": answer.total_ms,
        },
        "tokens": {"prompt": answer.prompt_tokens, "completion": answer.completion_tokens},
        "model": answer.model,
        "error": answer.error,
    }


class AnswerCreateSerializer(StrictSerializer):
    q = StrictCharField(max_length=MAX_QUERY_CHARS, help_text="The question; operators work.")


class FeedbackSerializer(StrictSerializer):
    helpful = StrictBooleanField()
    comment = StrictCharField(required=False, allow_blank=True, max_length=2000)


# --- what the answers look like (documentation: answer_data builds them) -----------------


class AnswerCreatedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Answer.Status.choices)
    url = serializers.URLField(help_text="GET it here: the answer so far, or final.")
    events_url = serializers.URLField(help_text="Follow it here as it is written (SSE).")


class AnswerFiltersSerializer(serializers.Serializer):
    phrases = serializers.ListField(child=serializers.CharField(), required=False)
    excluded = serializers.ListField(child=serializers.CharField(), required=False)
    authors = serializers.ListField(child=serializers.CharField(), required=False)
    lang = serializers.CharField(allow_null=True, required=False)
    since = serializers.DateField(allow_null=True, required=False)
    until = serializers.DateField(allow_null=True, required=False)


class CitationSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="The [n] in the text: retrieved[n - 1].")
    post_id = serializers.CharField(help_text="The post's id at its source.")
    written = serializers.BooleanField(help_text="Whether the model wrote this [n] itself.")
    evidence = serializers.ListField(
        child=serializers.CharField(), help_text="The post's sentences the answer rests on."
    )


class RetrievedSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    removed = serializers.BooleanField(
        required=False, help_text="Present (true) when the post is gone since: then only n."
    )
    post_id = serializers.CharField(required=False)
    id = serializers.IntegerField(required=False)
    author = serializers.CharField(required=False)
    created_at = serializers.DateTimeField(required=False)
    text = serializers.CharField(required=False)
    url = serializers.CharField(required=False, help_text="The post's page.")


class SentenceSerializer(serializers.Serializer):
    text = serializers.CharField()
    sources = serializers.ListField(child=serializers.IntegerField())
    supported = serializers.BooleanField()
    origin = serializers.ChoiceField(choices=["model", "post"])
    evidence = serializers.CharField()


class AnswerTimingsSerializer(serializers.Serializer):
    retrieval_ms = serializers.FloatField(allow_null=True)
    first_token_ms = serializers.FloatField(allow_null=True)
    total_ms = serializers.FloatField(allow_null=True)


class AnswerTokensSerializer(serializers.Serializer):
    prompt = serializers.IntegerField()
    completion = serializers.IntegerField()


class AnswerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    question = serializers.CharField()
    filters = AnswerFiltersSerializer(help_text="The question's operators, as parsed.")
    status = serializers.ChoiceField(choices=Answer.Status.choices)
    text = serializers.CharField(help_text="So far, or final; it only grows.")
    quoted = serializers.BooleanField(help_text="Every sentence shown is a post's own words.")
    style = serializers.ChoiceField(choices=[("", "not yet"), *Answer.Style.choices])
    cut_short = serializers.BooleanField(
        help_text="The deadline stopped the model; the answer was completed from the posts."
    )
    citations = CitationSerializer(many=True)
    retrieved = RetrievedSerializer(many=True, help_text="The posts read, numbered from 1.")
    sentences = SentenceSerializer(many=True, help_text="What is shown, each supported.")
    timings = AnswerTimingsSerializer()
    tokens = AnswerTokensSerializer()
    model = serializers.CharField()
    error = serializers.CharField(help_text="Why it failed; empty otherwise.")


class FeedbackRecordedSerializer(serializers.Serializer):
    helpful = serializers.BooleanField()
    comment = serializers.CharField()


def _json_data(schema: dict, description: str) -> dict:
    return {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": schema,
        "description": description,
    }


# One event of the stream, as Open API before 3.2 describes an event stream's schema.
ANSWER_EVENT = {
    "description": "One server-sent event: `event`, its `data` (JSON) and its `id`.",
    "oneOf": [
        {
            "type": "object",
            "required": ["event", "id", "data"],
            "properties": {
                "event": {"const": "token"},
                "id": {
                    "type": "string",
                    "pattern": "^[0-9]+$",
                    "description": "The characters of text so far: send it back as "
                    "Last-Event-ID to resume after it.",
                },
                "data": _json_data(
                    {
                        "type": "object",
                        "required": ["text"],
                        "properties": {"text": {"type": "string"}},
                    },
                    '`{"text": ...}`: the new text (a checked sentence with its [n]).',
                ),
            },
        },
        {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"enum": ["done", "failed"]},
                "data": _json_data(
                    {"$ref": "#/components/schemas/Answer"},
                    "The whole answer, as GET /api/answers/{id} gives it.",
                ),
            },
        },
    ],
}

NO_SUCH_ANSWER = (
    "No such answer, or not yours: an answer is read by who asked for it (the user, or the "
    "browser session) and by staff."
)


class AnswersView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=AnswerCreateSerializer,
        parameters=error_headers(too_many=True),
        responses={
            202: AnswerCreatedSerializer,
            **errors(
                bad_request="A bad q, or a malformed operator in it: the field errors.",
                too_many="Too many questions in a minute (PLAZA_ANSWERS_PER_MINUTE): see "
                "Retry-After.",
            ),
        },
        summary="Ask a question: the answer is written in the background",
    )
    def post(self, request: Request) -> Response:
        params = AnswerCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            answer = answer_create(
                question=params.validated_data["q"], user=request.user, client_ip=client_ip(request)
            )
        except QueryError as exc:
            return Response({"q": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        except AnswerRateLimited as exc:
            return Response(
                {"detail": str(exc)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(exc.retry_after_s)},
            )
        remember(request, answer)
        url = reverse("api-answer", args=[answer.pk])
        return Response(
            {
                "id": str(answer.pk),
                "status": answer.status,
                "url": request.build_absolute_uri(url),
                "events_url": request.build_absolute_uri(
                    reverse("api-answer-events", args=[answer.pk])
                ),
            },
            status=status.HTTP_202_ACCEPTED,
        )


class AnswerView(APIView):
    permission_classes = [permissions.AllowAny]  # owner, session or staff: see answer_for

    @extend_schema(
        parameters=error_headers(),
        responses={
            200: AnswerSerializer,
            **errors(not_found=NO_SUCH_ANSWER, path_ids=True),
        },
        summary="An answer, so far or final",
    )
    def get(self, request: Request, answer_id) -> Response:
        answer = answer_fail_if_overdue(answer_id=answer_for(request, answer_id).pk)
        return Response(answer_data(answer, request))


def _events_due(answer_id, offset: int) -> tuple[list[str], int, bool]:
    """The events owed to a reader who has `offset` characters: (events, new offset, last)."""
    answer = answer_fail_if_overdue(answer_id=answer_id)
    if answer is None:
        return [], offset, True
    events = []
    if len(answer.text) > offset:
        piece, offset = answer.text[offset:], len(answer.text)
        events.append(f"id: {offset}\nevent: token\ndata: {json.dumps({'text': piece})}\n\n")
    if answer.finished:
        kind = "done" if answer.status == Answer.Status.DONE else "failed"
        events.append(f"event: {kind}\ndata: {json.dumps(answer_data(answer))}\n\n")
        return events, offset, True
    return [*events, ": keep-alive\n\n"], offset, False


def _events(answer_id, offset: int) -> Iterator[str]:
    """The stream for a WSGI server: this thread is the reader's until the answer ends."""
    deadline = time.monotonic() + STREAM_MAX_S
    while time.monotonic() < deadline:
        events, offset, last = _events_due(answer_id, offset)
        yield from events
        if last:
            return
        time.sleep(STREAM_POLL_S)


async def _events_async(answer_id, offset: int) -> AsyncIterator[str]:
    """The stream for an ASGI server: between polls the reader waits on the event loop,
    not in a worker thread, so one process serves many streams beside other requests."""

    def due_and_release(answer_id, offset: int):
        try:
            return _events_due(answer_id, offset)
        finally:  # between polls the stream holds no connection: a pool has only a few
            close_old_connections()

    due = sync_to_async(due_and_release)
    deadline = time.monotonic() + STREAM_MAX_S
    while time.monotonic() < deadline:
        events, offset, last = await due(answer_id, offset)
        for event in events:
            yield event
        if last:
            return
        await asyncio.sleep(STREAM_POLL_S)


class EventStreamRenderer(BaseRenderer):
    """Lets content negotiation accept `Accept: text/event-stream` (EventSource sends it)."""

    media_type = "text/event-stream"
    format = "txt"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()  # errors only: events bypass renderers


class AnswerEventsView(APIView):
    permission_classes = [permissions.AllowAny]  # owner, session or staff: see answer_for
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "Last-Event-ID",
                TEXT,
                OpenApiParameter.HEADER,
                description="The last event's id: the stream resumes after it.",
            ),
            OpenApiParameter("format", exclude=True),
            *error_headers(),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                ANSWER_EVENT,
                description="Server-sent events: `token` with each new piece of text, then "
                "one `done` or `failed` with the whole answer; `: keep-alive` comments "
                "between. After 5 minutes the stream ends: reconnect with Last-Event-ID.",
            ),
            **errors(not_found=NO_SUCH_ANSWER, path_ids=True),
        },
        summary="Follow an answer as it is written (server-sent events)",
    )
    def get(self, request: Request, answer_id):
        answer = answer_for(request, answer_id)
        try:
            offset = max(0, int(request.headers.get("Last-Event-ID", "0")))
        except ValueError:
            offset = 0
        served_async = isinstance(request._request, ASGIRequest)
        events = (_events_async if served_async else _events)(answer.pk, offset)
        response = StreamingHttpResponse(events, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
        return response


class AnswerFeedbackView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=FeedbackSerializer,
        parameters=error_headers(),
        responses={
            201: FeedbackRecordedSerializer,
            **errors(
                bad_request="A bad field: the field errors.",
                not_found=NO_SUCH_ANSWER,
                path_ids=True,
            ),
        },
        summary="Rate an answer (again: the new verdict replaces yours)",
    )
    def post(self, request: Request, answer_id) -> Response:
        answer = answer_for(request, answer_id)
        params = FeedbackSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        feedback = answer_feedback_record(
            answer=answer,
            user=request.user,
            helpful=params.validated_data["helpful"],
            comment=params.validated_data.get("comment", ""),
        )
        return Response(
            {"helpful": feedback.helpful, "comment": feedback.comment},
            status=status.HTTP_201_CREATED,
        )
