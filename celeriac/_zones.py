"""Time zones for schedules: names checked with a hint, wall-clock minutes mapped to instants.

The DST policy of crontab lives here (:func:`wall_instant`): a wall-clock minute that happens
twice (fall-back) maps to its *first* occurrence; one that does not exist (spring-forward) maps
to the first instant after the gap. :func:`next_firing` builds on it so that each matching
wall-clock minute fires exactly once, and minutes that fall in one gap fire once together.
"""

from __future__ import annotations

import datetime as dt
import difflib
import zoneinfo
from functools import lru_cache
from typing import Final, Protocol

from celeriac.exceptions import ImproperlyConfigured

__all__ = ["check_timezone", "next_firing", "to_aware", "wall_instant", "zone"]

UTC: Final = dt.UTC
_MINUTE: Final = dt.timedelta(minutes=1)
_LONGEST_GAP_MINUTES: Final = 2 * 24 * 60  # Samoa skipped a whole day in 2011


class WallSearch(Protocol):
    """What :func:`next_firing` needs from a crontab: the next matching wall-clock minute."""

    def next_wall(self, start: dt.datetime) -> dt.datetime:
        """The first matching wall-clock minute at or after ``start``."""
        ...


@lru_cache(maxsize=64)
def zone(name: str) -> dt.tzinfo:
    """The time zone called ``name`` (IANA, e.g. ``"Europe/Berlin"``), with a hint if unknown."""
    if name.upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ImproperlyConfigured(f"unknown time zone {name!r}{hint}") from None


def check_timezone(value: object) -> str:
    """The ``timezone`` setting's check: an IANA name that this machine's tz database knows."""
    if isinstance(value, zoneinfo.ZoneInfo) and value.key:
        return value.key
    if not isinstance(value, str) or not value.strip():
        raise ImproperlyConfigured(f"setting 'timezone' must be a time zone name, got {value!r}")
    zone(value.strip())
    return value.strip()


def to_aware(moment: dt.datetime, naive_zone: dt.tzinfo) -> dt.datetime:
    """``moment`` itself when aware; a naive one is read as wall-clock time in ``naive_zone``."""
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        return moment
    return moment.replace(tzinfo=naive_zone)


def wall_instant(wall: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The UTC instant at which wall-clock minute ``wall`` (naive) fires in ``tz``.

    Repeated (fall-back): its first occurrence. Skipped (spring-forward): the first instant
    after the gap, i.e. the first later wall-clock minute that exists.
    """
    for _ in range(_LONGEST_GAP_MINUTES):
        instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == wall:
            return instant
        wall += _MINUTE
    raise ImproperlyConfigured(f"time zone {tz} has a gap longer than two days")  # pragma: no cover


def next_firing(spec: WallSearch, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The first firing of ``spec`` in zone ``tz`` strictly after the aware instant ``after``."""
    wall = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0, fold=0)
    while True:
        wall = spec.next_wall(wall)
        instant = wall_instant(wall, tz)
        if instant > after:
            return instant.astimezone(tz)
        wall += _MINUTE  # an earlier wall minute's instant, or one that shares a DST gap
