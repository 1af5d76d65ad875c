"""Celery's ``celery.utils`` import paths that migrated code uses (``celeriac.utils.log``)."""

from __future__ import annotations

from .._current import uuid

__all__ = ["uuid"]
