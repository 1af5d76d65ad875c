"""Time zones for schedules: names checked with a hint, wall-clock minutes mapped to instants.

The DST policy of crontab lives here (cron's practice, see :mod:`celeriac.schedules`):

- a job at set hours (:func:`wall_instant`): a wall-clock minute that happens twice
  (fall-back) fires at its *first* occurrence; one that does not exist (spring-forward) fires
  at the first instant after the gap, and the minutes of one gap fire there once together;
- a job that runs every hour (:func:`_next_on_clock`) follows the clock as it is: it fires at
  every instant whose wall-clock minute matches, so minutes the clock skips do not fire and the
  repeated hour fires again, as cron does for its wildcard jobs.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache
from typing import Final, Protocol

from celeriac.exceptions import ImproperlyConfigured

__all__ = ["check_timezone", "instants", "next_firing", "to_aware", "wall_instant", "zone"]

UTC: Final = dt.UTC
_MINUTE: Final = dt.timedelta(minutes=1)
_LONGEST_GAP_MINUTES: Final = 2 * 24 * 60  # Samoa skipped a whole day in 2011
_MAX_SHIFT: Final = dt.timedelta(hours=3)


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
        import difflib  # noqa: PLC0415 - only when a suggestion is made (start-up time)

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


def next_firing(
    spec: WallSearch, after: dt.datetime, tz: dt.tzinfo, *, follows_clock: bool = False
) -> dt.datetime:
    """The first firing of ``spec`` in zone ``tz`` strictly after the aware instant ``after``."""
    if follows_clock:
        return _next_on_clock(spec, after, tz)
    wall = _wall(after, tz)
    while True:
        wall = spec.next_wall(wall)
        instant = wall_instant(wall, tz)
        if instant > after:
            return instant.astimezone(tz)
        wall += _MINUTE  # an earlier wall minute's instant, or one that shares a DST gap


def _wall(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The naive wall-clock minute ``moment`` falls in, in ``tz``."""
    return moment.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0, fold=0)


def instants(wall: dt.datetime, tz: dt.tzinfo) -> list[dt.datetime]:
    """Every UTC instant whose wall-clock minute in ``tz`` is ``wall``: none, one or two."""
    found: list[dt.datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == wall and instant not in found:
            found.append(instant)
    return found


def _next_on_clock(spec: WallSearch, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The first instant after ``after`` whose wall-clock minute matches, repeated or not."""
    wall = spec.next_wall(_wall(after, tz))
    while not (found := [i for i in instants(wall, tz) if i > after]):
        wall = spec.next_wall(wall + _MINUTE)
    best = min(found)
    if (
        best - after <= _MAX_SHIFT
        and after.astimezone(tz).utcoffset() == best.astimezone(tz).utcoffset()
    ):
        return best.astimezone(tz)  # no DST change in between: wall-clock order is time order
    return _search_around_fall_back(spec, after, tz)


def _search_around_fall_back(spec: WallSearch, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The exact search when a DST change may lie between ``after`` and the next firing.

    Wall-clock order is not time order around a fall-back, so the search starts 3 hours of
    wall clock before ``after`` and stops 3 hours past the best instant found (cron's bound:
    DST moves clocks by less than 3 hours).
    """
    wall, best = _wall(after, tz) - _MAX_SHIFT, None
    while best is None or wall <= _wall(best, tz) + _MAX_SHIFT:
        wall = spec.next_wall(wall)
        for instant in instants(wall, tz):
            if instant > after and (best is None or instant < best):
                best = instant
        wall += _MINUTE
    return best.astimezone(tz)
