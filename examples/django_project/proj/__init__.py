"""The Django project; importing it loads the celeriac app (Celery's Django layout)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
