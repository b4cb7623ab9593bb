from celery import shared_task

from ops.services import worker_heartbeat_record


@shared_task(bind=True, ignore_result=False)
def worker_heartbeat(self, queue: str) -> dict:
    """Record that this worker serves `queue`; returns what was recorded."""
    beat = worker_heartbeat_record(hostname=self.request.hostname or "unknown", queue=queue)
    return {"hostname": beat.hostname, "queue": beat.queue, "pid": beat.pid, "beats": beat.beats}
