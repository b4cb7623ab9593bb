"""The ASGI application: what the production server runs (config/gunicorn.py, uvicorn
workers), so an answer's event stream waits on the event loop instead of holding a worker.

Web processes share the machine's cores with each other and with the Celery workers, so
each holds its math libraries to PLAZA_WEB_THREADS threads (ml.cpus.budget_math_threads)."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from ml.cpus import budget_math_threads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()
budget_math_threads(settings.PLAZA_WEB_THREADS)
