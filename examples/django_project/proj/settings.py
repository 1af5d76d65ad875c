"""Django settings of the example: SQLite, one app (orders), celeriac under CELERY_*."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = True
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "orders"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# No broker configured: the worker embeds the hub on tcp://127.0.0.1:5555 (a worker given an
# address waits for the hub there instead). The tests give their own port.
if "EXAMPLE_BROKER_URL" in os.environ:
    CELERY_BROKER_URL = os.environ["EXAMPLE_BROKER_URL"]
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_TIME_LIMIT = 30 * 60
