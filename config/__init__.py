"""Plaza's Django project: settings, urls, the Celery app, wsgi/asgi. Wiring only."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
