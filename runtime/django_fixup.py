"""Django's database connections between tasks: the worker side of Celery's Django fixup.

How it works: when a worker node starts (after the app's task modules are imported) and Django
is configured in the process (``django.conf.settings.configured`` and the app registry
ready, as ``DJANGO_SETTINGS_MODULE`` + ``config_from_object('django.conf:settings')`` make it),
:func:`install` connects two receivers, once per process: ``task_prerun`` and
``task_postrun`` call Django's ``close_old_connections()`` in the thread that runs the task,
and ``task_postrun`` also closes Django's caches (``close_caches()``), as a request does. A
task therefore never starts on a connection the database closed while the worker was idle
("server has gone away"), and a long-lived worker holds no more connections than its slots.

Difference from Celery, on purpose: Celery closes every connection around each task (unless
``CELERY_DB_REUSE_MAX``); ``close_old_connections`` is Django's own rule, so ``CONN_MAX_AGE``
(persistent connections) and ``CONN_HEALTH_CHECKS`` are honoured: with Django's default
``CONN_MAX_AGE = 0`` both close every connection. Each prefork child installs it too (its
``WorkerNode`` starts the same way); children start with forkserver, so no connection is
inherited. Coroutine tasks run on an event loop, where Django refuses synchronous database
calls: the receivers leave that thread alone. Nothing is closed at install: the thread that
starts the worker may be a test's, inside a transaction (``celeriac.testing`` in a Django test).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

from celeriac import signals
from celeriac._log import get_logger

__all__ = ["django_configured", "install"]

_log = get_logger("celeriac.worker")
_UID = "celeriac.runtime.django_fixup"


def django_configured() -> bool:
    """True if Django is imported here with settings configured and its apps loaded."""
    if "django" not in sys.modules:
        return False
    try:
        settings = importlib.import_module("django.conf").settings
        apps = importlib.import_module("django.apps").apps
        return bool(settings.configured and apps.ready)
    except Exception:  # a broken Django setup is reported by Django itself, not here
        return False


def install() -> bool:
    """Close Django's old connections around every task run in this process, if Django is
    configured (idempotent); True if installed."""
    if not django_configured():
        return False
    signals.task_prerun.connect(_before_task, dispatch_uid=_UID + ".prerun")
    signals.task_postrun.connect(_after_task, dispatch_uid=_UID + ".postrun")
    _log.debug("django_fixup_installed")
    return True


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _close_old_connections() -> None:
    if not _in_event_loop():
        importlib.import_module("django.db").close_old_connections()


def _before_task(**_: Any) -> None:
    _close_old_connections()


def _after_task(**_: Any) -> None:
    if _in_event_loop():
        return
    _close_old_connections()
    importlib.import_module("django.core.cache").close_caches()
