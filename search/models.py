from django.db import models


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


class IndexGeneration(models.Model):
    """One complete index of the posts, built with one embedding model.

    Exactly one generation is live; search reads it. A rebuild (or a new embedding model)
    fills a new generation beside the live one and swaps it in when complete.
    """

    class State(models.TextChoices):
        BUILDING = "building"
        LIVE = "live"
        RETIRED = "retired"
        FAILED = "failed"

    name = models.SlugField(max_length=64, unique=True, help_text="Its folder under var/index/.")
    embed_model = models.CharField(max_length=300)
    dim = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.BUILDING)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # A build's progress, written as it goes.
    posts_total = models.PositiveIntegerField(default=0)
    posts_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
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

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="live"), name="one_live_generation"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"
