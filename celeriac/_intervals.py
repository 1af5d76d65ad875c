"""Interval schedule helpers: checking ``run_every``, Celery's display, ``relative`` rounding."""

from __future__ import annotations

import datetime as dt
from numbers import Real

from celeriac._cron import ScheduleError, ScheduleTypeError

__all__ = ["humanize", "interval", "round_down"]


def interval(value: object) -> dt.timedelta:
    if isinstance(value, bool) or not isinstance(value, Real | dt.timedelta):
        raise ScheduleTypeError(f"run_every must be seconds or a timedelta, got {value!r}")
    delta = value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=float(value))
    if delta <= dt.timedelta(0):
        raise ScheduleError(f"run_every must be more than 0 seconds, got {value!r}")
    return delta


_UNITS = (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0))


def humanize(seconds: float) -> str:
    for unit, size in _UNITS:
        if seconds >= size:
            count = seconds / size
            return f"{count:.2f} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:.2f} seconds"


def round_down(moment: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    seconds = delta.total_seconds()
    if seconds >= 86400:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if seconds >= 3600:
        return moment.replace(minute=0, second=0, microsecond=0)
    if seconds >= 60:
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)
