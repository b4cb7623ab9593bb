"""Search's Celery tasks, by domain: the index (`index`) and answers (`answers`).

Each task keeps the name it has always had (beat entries and queued messages carry it)
and says its queue where it is defined. Celery's autodiscovery imports this package, so
it imports both modules to register their tasks with every worker.
"""

from search.tasks import answers, index  # noqa: F401 - registers the tasks
