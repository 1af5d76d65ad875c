"""Sun events for :class:`celeriac.schedules.solar`, computed by PyEphem (``ephem``).

PyEphem is the library Celery uses, so the same event names mean the same instants: the
observer is at sea level with no atmospheric pressure; sunrise and sunset are the upper limb
crossing -0°34' (refraction), the twilights the sun's centre crossing -6°, -12° and -18°, and
solar noon its transit. (Celery gives ``dusk_astronomical`` a horizon of +18°, a typo; here it
is -18°, like ``dawn_astronomical``.) ``ephem`` is an optional dependency: ``pip install
'celeriac[solar]'``.
"""

from __future__ import annotations

import datetime as dt
import importlib
from numbers import Real
from types import ModuleType
from typing import Any, Final

from celeriac._cron import ScheduleError, ScheduleTypeError

__all__ = ["EVENTS", "check_place", "load_ephem", "next_event"]

EVENTS: Final = (
    "dawn_astronomical",
    "dawn_nautical",
    "dawn_civil",
    "sunrise",
    "solar_noon",
    "sunset",
    "dusk_civil",
    "dusk_nautical",
    "dusk_astronomical",
)
_HORIZON: Final = {
    "dawn_astronomical": "-18",
    "dawn_nautical": "-12",
    "dawn_civil": "-6",
    "sunrise": "-0:34",
    "solar_noon": "0",
    "sunset": "-0:34",
    "dusk_civil": "-6",
    "dusk_nautical": "-12",
    "dusk_astronomical": "-18",
}
_SEARCH_DAYS: Final = 400  # near the poles some events happen once a year
_STEP: Final = dt.timedelta(seconds=1)
_AFTER_ANTITRANSIT: Final = dt.timedelta(minutes=1)

MISSING_EPHEM: Final = (
    "solar schedules need the 'ephem' package (PyEphem): pip install 'celeriac[solar]'"
)


def load_ephem() -> ModuleType:
    """The ``ephem`` module, or an ImportError that names the ``solar`` extra."""
    try:
        return importlib.import_module("ephem")
    except ImportError as exc:
        raise ImportError(MISSING_EPHEM) from exc


def next_event(event: str, lat: float, lon: float, after: dt.datetime) -> dt.datetime | None:
    """The first ``event`` strictly after the aware instant ``after``, in UTC.

    Days on which the event does not happen (polar day or night) are skipped; None when it
    does not happen within 400 days. An event less than a second after ``after`` counts as
    the one that ran at ``after`` (PyEphem's rounding), so the next one is returned.
    """
    ephem = load_ephem()
    observer = _observer(ephem, event, lat, lon)
    start = after.astimezone(dt.UTC).replace(tzinfo=None) + _STEP
    for _ in range(_SEARCH_DAYS):
        try:
            found = _find(ephem, observer, event, start)
        except ephem.CircumpolarError:
            observer.date = start
            start = _to_datetime(observer.next_antitransit(ephem.Sun())) + _AFTER_ANTITRANSIT
            continue
        return found.replace(tzinfo=dt.UTC)
    return None


def _observer(ephem: ModuleType, event: str, lat: float, lon: float) -> Any:
    observer = ephem.Observer()
    observer.lat, observer.lon = str(lat), str(lon)
    observer.elev = 0
    observer.pressure = 0
    observer.horizon = _HORIZON[event]
    return observer


def _find(ephem: ModuleType, observer: Any, event: str, start: dt.datetime) -> dt.datetime:
    sun = ephem.Sun()
    if event == "solar_noon":
        return _to_datetime(observer.next_transit(sun, start=start))
    use_center = event not in ("sunrise", "sunset")
    method = (
        observer.next_rising if event.startswith(("dawn", "sunrise")) else observer.next_setting
    )
    return _to_datetime(method(sun, start=start, use_center=use_center))


def _to_datetime(date: Any) -> dt.datetime:
    result: dt.datetime = date.datetime()
    return result


def check_place(event: object, lat: object, lon: object) -> None:
    """Celery's checks of a solar schedule's arguments, with Celery's messages."""
    if event not in EVENTS:
        raise ScheduleError(
            f'Argument event "{event}" is invalid, must be one of {", ".join(sorted(EVENTS))}.'
        )
    _check_degrees(lat, 90, "latitude")
    _check_degrees(lon, 180, "longitude")


def _check_degrees(value: object, bound: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ScheduleTypeError(f"Argument {name} must be a number, got {value!r}")
    if not -bound <= float(value) <= bound:
        raise ScheduleError(
            f"Argument {name} {value} is invalid, must be between -{bound} and {bound}."
        )
