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
