from celery import shared_task

from ops import services


@shared_task(bind=True, queue_name="default", ignore_result=False)
def worker_heartbeat(self, queue: str) -> dict:
    """Record that this worker serves `queue`; returns what was recorded."""
    beat = services.worker_heartbeat_record(
        hostname=self.request.hostname or "unknown", queue=queue
    )
    return {"hostname": beat.hostname, "queue": beat.queue, "pid": beat.pid, "beats": beat.beats}


@shared_task(queue_name="default")
def freshness_sample_record() -> float | None:
    """Beat, once a minute: one freshness sample for the ops page's chart; returns the lag."""
    sample = services.freshness_sample_record()
    return sample.freshness_lag_s if sample is not None else None
