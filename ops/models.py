from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a worker process answered on a queue."""

    hostname = models.CharField(max_length=255)
    queue = models.CharField(max_length=64)
    pid = models.PositiveIntegerField()
    seen_at = models.DateTimeField()
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hostname", "queue"], name="heartbeat_host_queue")
        ]
        ordering = ["queue", "hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} on {self.queue}"


class FreshnessSample(models.Model):
    """The index's freshness at one moment, for the ops page's chart.

    Beat records one a minute (ops.tasks.freshness_sample_record); rows older than
    PLAZA_OPS_HISTORY_HOURS are pruned as new ones come, so the table stays small."""

    taken_at = models.DateTimeField(db_index=True)
    freshness_lag_s = models.FloatField(help_text="Age of the oldest change not yet indexed.")
    queued = models.PositiveIntegerField(help_text="Changes waiting for the index.")
    last_flush_lag_s = models.FloatField(
        null=True, blank=True, help_text="The last batch's oldest change to its commit."
    )
    generation = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["taken_at"]

    def __str__(self) -> str:
        return f"{self.freshness_lag_s:.1f} s lag at {self.taken_at:%Y-%m-%d %H:%M:%S}"
