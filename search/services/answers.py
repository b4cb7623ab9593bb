"""Answers: create (rate-limited), run (the chain, saved as it grows), sweep, feedback.

    answer = answer_create(question="...", user=request.user, client_ip=ip)   # queued
    answer_run(answer_id=answer.id)     # in the gpu worker (or a thread, inline mode)

`answer_run` writes the text to the row at most every SAVE_EVERY_S while tokens arrive,
so a page following the answer (server-sent events) sees it grow. A run that raises
marks the answer failed with the error; a worker killed outright leaves it running, and
it is failed once past its deadline plus OVERDUE_GRACE, by its next reader
(`answer_fail_if_overdue`) or by `answers_fail_stale` (beat).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from ops.jobs import ProgressWriter, job_finish, job_start, jobs_fail_stale
from search.chain import answer_stream
from search.models import Answer, AnswerFeedback
from search.query import parse_query

logger = logging.getLogger(__name__)

SAVE_EVERY_S = 0.25
STALE_AFTER = Answer.STALE_AFTER  # running with no write this long, an answer is failed
OVERDUE_GRACE = timedelta(seconds=10)  # past its deadline by this, a running answer is dead
QUEUED_TOO_LONG = timedelta(minutes=30)


class AnswerRateLimited(Exception):
    """Too many answers asked for recently; says when to try again."""

    def __init__(self, retry_after_s: int):
        super().__init__(f"too many questions: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def answer_create(*, question: str, user=None, client_ip: str | None = None) -> Answer:
    """A queued answer, sent to the gpu queue (or a thread, inline mode) on commit.

    Raises search.query.QueryError for a malformed operator and AnswerRateLimited when
    this user (or, signed out, this address) asked PLAZA_ANSWERS_PER_MINUTE already.
    """
    parsed = parse_query(question)
    limit = settings.PLAZA_ANSWERS_PER_MINUTE
    window_start = timezone.now() - timedelta(minutes=1)
    recent = Answer.objects.filter(created_at__gte=window_start)
    if user is not None and user.is_authenticated:
        recent = recent.filter(user=user)
    else:
        recent = recent.filter(user__isnull=True, client_ip=client_ip)
    if recent.count() >= limit:
        oldest = recent.order_by("created_at").first()
        wait = 60 - (timezone.now() - oldest.created_at).total_seconds()
        raise AnswerRateLimited(max(1, int(wait) + 1))
    with transaction.atomic():
        answer = Answer.objects.create(
            question=question,
            filters=parsed.filters,
            user=user if user is not None and user.is_authenticated else None,
            client_ip=client_ip,
        )
        transaction.on_commit(lambda: answer_enqueue(answer_id=answer.pk))
    return answer


def answer_enqueue(*, answer_id: UUID) -> None:
    if settings.PLAZA_ANSWER_MODE == "inline":
        threading.Thread(target=_run_in_thread, args=(answer_id,), daemon=True).start()
        return
    from search.tasks.answers import answer_run as answer_run_task

    try:
        answer_run_task.apply_async((str(answer_id),))
    except Exception as exc:  # noqa: BLE001 - any broker failure: say so on the answer
        logger.exception("could not enqueue answer %s", answer_id)
        Answer.objects.filter(pk=answer_id).update(
            status=Answer.Status.FAILED, error=f"could not reach the answer workers: {exc}"
        )


def _run_in_thread(answer_id: UUID) -> None:
    try:
        answer_run(answer_id=answer_id)
    finally:
        close_old_connections()


def answer_run(*, answer_id: UUID) -> Answer:
    """Run the chain for a queued answer, saving the text as it grows; idempotent for a
    finished answer (a redelivered task does nothing)."""
    answer = Answer.objects.get(pk=answer_id)
    if answer.finished:
        return answer
    job_start(answer, text="", error="")
    write = ProgressWriter(answer, every_s=SAVE_EVERY_S)
    text = ""
    try:
        for event in answer_stream(question=answer.question):
            if event.kind == "retrieved":
                write(force=True, retrieved=[hit.post.pk for hit in event.hits])
            elif event.kind == "token":
                text += event.text
                write(text=text)
            else:
                result = event.result
    except Exception as exc:
        logger.exception("answer %s failed", answer.pk)
        job_finish(answer, Answer.Status.FAILED, error=f"{type(exc).__name__}: {exc}", text=text)
        raise
    written = set(result.written_citations)
    with transaction.atomic():
        job_finish(
            answer,
            Answer.Status.DONE,
            text=result.text,
            model_text=result.model_text,
            style=result.style,
            cut_short=result.cut_short,
            citations=[
                {
                    "n": n,
                    "post": result.hits[n - 1].post.pk,
                    "external_id": result.hits[n - 1].post.external_id,
                    "written": n in written,
                    "evidence": result.evidence(n),
                }
                for n in result.citations
            ],
            sentences=[
                {
                    "text": s.text,
                    "sources": s.sources,
                    "supported": s.supported,
                    "origin": s.origin,
                    "evidence": s.evidence,
                }
                for s in result.sentences
            ],
            rejected=[{"text": s.claim, "reason": s.reason} for s in result.rejected],
            model=result.model,
            retrieval_ms=result.timings.get("retrieval_ms"),
            first_token_ms=result.timings.get("first_token_ms"),
            total_ms=result.timings.get("total_ms"),
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        )
        answer.refresh_from_db()
        answer.cited_posts.set([result.hits[n - 1].post.pk for n in result.citations])
    return answer


def _overdue_since() -> datetime:
    """Running since before this, an answer is past its deadline plus OVERDUE_GRACE: the
    chain stops itself at its deadline, so its worker died or hangs."""
    deadline = timedelta(seconds=settings.PLAZA_ANSWER_DEADLINE_S) + OVERDUE_GRACE
    return timezone.now() - deadline


def _overdue() -> Q:
    return Q(status=Answer.Status.RUNNING, started_at__lt=_overdue_since())


def answers_fail_stale() -> int:
    """Fail the answers whose worker died: running with no write for Answer.STALE_AFTER,
    running past their deadline (see _overdue), or queued with no write for
    QUEUED_TOO_LONG. Returns how many."""
    queued_too_long = Q(
        status=Answer.Status.QUEUED, updated_at__lt=timezone.now() - QUEUED_TOO_LONG
    )
    return jobs_fail_stale(Answer, also=_overdue() | queued_too_long)


def answer_fail_if_overdue(*, answer_id: UUID) -> Answer | None:
    """The answer as it stands, failed first if it runs past its deadline (readers call
    this as they poll, so none waits on a dead worker for the beat sweep: the sweep runs
    then, with this answer in it). Writes only then: a poll is a read, never a lock on
    SQLite."""
    answer = Answer.objects.filter(pk=answer_id).first()
    overdue = answer is not None and answer.status == Answer.Status.RUNNING
    if overdue and answer.started_at and answer.started_at < _overdue_since():
        jobs_fail_stale(Answer, also=Q(_overdue(), pk=answer_id))
        answer.refresh_from_db()
    return answer


@transaction.atomic
def answer_feedback_record(
    *, answer: Answer, user, helpful: bool, comment: str = ""
) -> AnswerFeedback:
    """Record (or replace) this user's verdict on an answer."""
    feedback, _ = AnswerFeedback.objects.update_or_create(
        answer=answer,
        user=user if user is not None and user.is_authenticated else None,
        defaults={"helpful": helpful, "comment": comment},
    )
    return feedback
