"""The WSGI application (runserver, or a WSGI server); config/asgi.py is the production one.
Its math libraries keep to PLAZA_WEB_THREADS threads, as there."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from ml.cpus import budget_math_threads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
budget_math_threads(settings.PLAZA_WEB_THREADS)
