from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models

from ops.jobs import Job, job_status_field


class IndexQueueEntry(models.Model):
    """A post whose change has not reached the index yet (a transactional outbox).

    Written in the same transaction as the change itself, so a change is never lost: the
    index worker deletes entries only after the index holding them is committed. The
    oldest entry's age is the freshness lag.
    """

    post_id = models.BigIntegerField(help_text="Not a foreign key: outlives a removed row.")
    enqueued_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "index queue entry"
        verbose_name_plural = "index queue"
        ordering = ["enqueued_at", "id"]

    def __str__(self) -> str:
        return f"post {self.post_id} since {self.enqueued_at:%Y-%m-%d %H:%M:%S}"


class IndexGenerationQuerySet(models.QuerySet):
    def served(self) -> IndexGenerationQuerySet:
        """The generations of the configured search backend (PLAZA_SEARCH_BACKEND)."""
        return self.filter(backend=settings.PLAZA_SEARCH_BACKEND)


class IndexGeneration(models.Model):
    """One complete index of the posts, built with one embedding model in one search
    backend.

    Exactly one generation per backend is live; search reads the configured backend's. A
    rebuild (or a new embedding model) fills a new generation beside the live one and
    swaps it in when complete. After PLAZA_SEARCH_BACKEND changes, the other backend's
    generations are left as they were (search starts from an empty index until a
    rebuild or reconcile fills it).
    """

    class State(models.TextChoices):
        BUILDING = "building"
        LIVE = "live"
        RETIRED = "retired"
        FAILED = "failed"

    name = models.SlugField(max_length=64, unique=True, help_text="Its folder under var/index/.")
    backend = models.CharField(
        max_length=16,
        default="faiss",
        help_text="The search backend holding it (PLAZA_SEARCH_BACKEND when it was made).",
    )
    embed_model = models.CharField(max_length=300)
    dim = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.BUILDING)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # A build's progress, written as it goes.
    posts_total = models.PositiveIntegerField(default=0)
    posts_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # A rebuild's chunks (IndexBuildChunk), counted as workers finish them.
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    # Live sync: the last batch written.
    last_flush_at = models.DateTimeField(null=True, blank=True)
    last_flush_posts = models.PositiveIntegerField(default=0)
    last_flush_ms = models.FloatField(default=0)
    last_flush_lag_s = models.FloatField(
        default=0, help_text="Seconds from the batch's oldest change to its commit."
    )
    flushed_posts = models.PositiveBigIntegerField(default=0)
    bm25_built_at = models.DateTimeField(null=True, blank=True)
    bm25_build_ms = models.FloatField(default=0)
    # The last reconcile: when, and what it repaired.
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconcile_report = models.JSONField(default=dict, blank=True)

    objects = IndexGenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["backend"],
                condition=models.Q(state="live"),
                name="one_live_generation_per_backend",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"


class IndexBuildChunk(models.Model):
    """One slice of a rebuild: the visible posts with ids in [first_id, last_id], encoded
    and written by whichever index or gpu worker takes it. Done once: a chunk redone (its
    worker was killed) writes the same rows again and counts once."""

    generation = models.ForeignKey(IndexGeneration, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    posts = models.PositiveIntegerField(default=0, help_text="Written, once done.")
    attempts = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["generation", "number"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "number"], name="one_chunk_number"),
        ]

    def __str__(self) -> str:
        return f"{self.generation_id} #{self.number} [{self.first_id}, {self.last_id}]"


class Answer(Job):
    """A generated answer to a question, with what it cited and how long it took.

    A job (ops.jobs): written as it grows (the page follows it by server-sent events);
    `status` ends in done or failed, never stays running (a sweep fails answers whose
    worker died).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    STALE_AFTER = timedelta(minutes=5)  # a running answer writes far more often than this
    STALE_ERROR = "the worker stopped before finishing this answer"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    question = models.TextField()
    filters = models.JSONField(default=dict, blank=True)
    status = job_status_field(Status)
    text = models.TextField(blank=True)

    class Style(models.TextChoices):
        EXTRACTIVE = "extractive", "the posts' own sentences"
        GENERATIVE = "generative", "the model's supported sentences"
        MIXED = "mixed", "the posts' sentences, then the model's"

    # Everything the model wrote, shown or not ("" when it was not called).
    model_text = models.TextField(blank=True)
    style = models.CharField(max_length=16, choices=Style.choices, blank=True)
    cut_short = models.BooleanField(default=False)  # the deadline stopped the model
    # [{"n": 1, "post": pk, "external_id": ..., "written": bool, "evidence": [sentence]}]
    # in order of first use
    citations = models.JSONField(default=list, blank=True)
    retrieved = models.JSONField(default=list, blank=True)  # post pks, numbered from 1
    # What is shown: [{"text", "sources", "supported", "origin", "evidence"}]
    sentences = models.JSONField(default=list, blank=True)
    rejected = models.JSONField(default=list, blank=True)  # not shown: [{"text", "reason"}]
    cited_posts = models.ManyToManyField("posts.Post", blank=True, related_name="answers")
    model = models.CharField(max_length=300, blank=True)
    adapter = models.CharField(max_length=300, blank=True)
    retrieval_ms = models.FloatField(null=True, blank=True)
    first_token_ms = models.FloatField(null=True, blank=True)
    total_ms = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta(Job.Meta):
        indexes = [models.Index(fields=["status", "updated_at"], name="answer_status_updated")]

    def __str__(self) -> str:
        return f"{self.question[:60]} ({self.status})"


class AnswerFeedback(models.Model):
    """A reader's verdict on an answer: up or down, and why."""

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    helpful = models.BooleanField()
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["answer", "user"], name="one_feedback_per_user_and_answer"
            ),
        ]

    def __str__(self) -> str:
        return f"{'up' if self.helpful else 'down'} on {self.answer_id}"
