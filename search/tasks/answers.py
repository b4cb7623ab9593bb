"""Answer tasks: writing one runs on `gpu` (the chat model stays loaded in that worker
process); the sweep of answers whose worker died is a small chore on `default`."""

from celery import shared_task

from search.services import answers


@shared_task(name="search.tasks.answer_run", queue_name="gpu", ignore_result=True)
def answer_run(answer_id: str) -> str:
    """Write one answer (gpu queue: the model stays loaded in this worker process)."""
    return answers.answer_run(answer_id=answer_id).status


@shared_task(name="search.tasks.answers_fail_stale", queue_name="default", ignore_result=True)
def answers_fail_stale() -> int:
    """Mark failed the answers whose worker died mid-way (beat, every minute)."""
    return answers.answers_fail_stale()
