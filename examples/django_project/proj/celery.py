"""proj/celery.py from Celery's "First steps with Django", with one line changed."""

import os

from celeriac import Celery  # was: from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
