"""Schedules for periodic tasks: :class:`crontab`, :class:`schedule` (intervals), :class:`solar`.

Celery's import path and API (``celery.schedules``): ``is_due(last_run_at)`` returns
``schedstate(is_due, next)`` (``next`` in seconds), ``remaining_estimate(last_run_at)`` a
timedelta. On top of Celery's API every schedule has a **pure** ``next_run(after)``: the first
firing strictly after ``after``, computed from its argument alone. ``is_due`` and
``remaining_estimate`` read the current time from ``now=`` when given, else from ``nowfun``,
else the system clock, so tests never sleep.

**Time zones.** A crontab is evaluated in its time zone: ``tz=`` when given, else the app's
``timezone`` setting (``crontab(..., app=app)``, or bound by beat), else UTC. ``enable_utc``
decides how *naive* datetimes passed in are read: as UTC when True (the default, as in
Celery), as wall-clock time in the schedule's zone when False. Returned datetimes are aware,
in the schedule's zone. Intervals (:class:`schedule`) and solar events are absolute: an
interval of 3600 s is 3600 s across a DST change.

**DST policy** (crontab), cron's own practice:

- *jobs at set hours* (the ``hour`` field leaves out some hour, e.g. a daily 02:30): each
  matching wall-clock minute fires exactly once. On spring-forward, a minute the clock skips
  (02:30 in Berlin on the last Sunday of March) fires once at the first instant after the gap
  (03:00 CEST), and several skipped minutes (``hour=2, minute='*/15'``) fire once together
  there. On fall-back, a minute the clock shows twice (02:30 in Berlin on the last Sunday of
  October) fires once, at its first occurrence (02:30 CEST).
- *jobs that run every hour* (``hour='*'``: ``minute='*/15'``, ``minute=30``): they follow the
  clock as it is, like cron's wildcard jobs. A skipped minute does not fire (an hourly :30
  job runs at 01:30 CET, then 03:30 CEST) and the repeated hour fires again (every 15 minutes
  goes on every 15 real minutes); every firing is a distinct instant.

**Serialisation.** ``to_dict()`` gives a plain dict (str, int, float, bool, lists) that json and
msgpack carry; ``schedule_from_dict(d)`` (or ``cls.from_dict``) rebuilds an equal schedule.
``nowfun`` and ``app`` are not carried: the process that rebuilds binds its own.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

from celeriac import _solar
from celeriac._cron import (
    CronSpec,
    ParseException,
    ScheduleError,
    ScheduleTypeError,
    crontab_parser,
    expand,
)
from celeriac._intervals import humanize, interval, round_down
from celeriac._zones import UTC, next_firing, to_aware, zone
from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "BaseSchedule",
    "ParseException",
    "ScheduleError",
    "ScheduleTypeError",
    "crontab",
    "crontab_parser",
    "maybe_schedule",
    "schedstate",
    "schedule",
    "schedule_from_dict",
    "solar",
]

NowFun = Callable[[], dt.datetime]


class schedstate(NamedTuple):  # noqa: N801 - Celery's name
    """What ``is_due`` answers: due now?, and seconds until the scheduler should look again."""

    is_due: bool
    next: float


class BaseSchedule:
    """What every schedule shares: the clock (``nowfun``), the app and its time zone.

    ``app`` is an App or a settings mapping (``app.conf``, frozen or not): its ``timezone`` and
    ``enable_utc`` are read, and an App's injected ``clock`` when there is no ``nowfun``.
    """

    kind: ClassVar[str] = ""

    def __init__(
        self, nowfun: NowFun | None = None, app: Any = None, tz: str | dt.tzinfo | None = None
    ) -> None:
        self.nowfun = nowfun
        self.app = app
        self._tz = None if tz is None else _zone_name(tz)

    @property
    def tz(self) -> dt.tzinfo:
        """The zone the schedule is evaluated in: ``tz=``, else the app's ``timezone``, else UTC."""
        return zone(self._tz or _conf_value(self.app, "timezone", "UTC"))

    @property
    def utc_enabled(self) -> bool:
        """The app's ``enable_utc`` (True without an app): naive datetimes are then UTC."""
        return bool(_conf_value(self.app, "enable_utc", True))

    def maybe_make_aware(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` as an aware datetime; a naive one is read as ``enable_utc`` says."""
        return to_aware(moment, UTC if self.utc_enabled else self.tz)

    def now(self) -> dt.datetime:
        """The current time: ``nowfun()``, else the app's injected ``clock``, else the system's."""
        if self.nowfun is not None:
            return self.maybe_make_aware(self.nowfun())
        clock = getattr(self.app, "clock", None)
        seconds = clock.time() if clock is not None else time.time()
        return dt.datetime.fromtimestamp(seconds, UTC)

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """The first firing strictly after ``after`` (pure: reads no clock)."""
        raise NotImplementedError

    def remaining_estimate(
        self, last_run_at: dt.datetime, now: dt.datetime | None = None
    ) -> dt.timedelta:
        """Time from ``now`` until the first firing after ``last_run_at`` (negative if late)."""
        current = self.maybe_make_aware(now) if now is not None else self.now()
        # In UTC: two datetimes of one zone subtract by wall time, ignoring a DST fold.
        return self.next_run(last_run_at).astimezone(dt.UTC) - current.astimezone(dt.UTC)

    def is_due(self, last_run_at: dt.datetime, now: dt.datetime | None = None) -> schedstate:
        """``schedstate(is_due, next)``: is a firing due since ``last_run_at``, and seconds
        until the next one (counted from ``now`` when due, as Celery does)."""
        current = self.maybe_make_aware(now) if now is not None else self.now()
        due = self.remaining_estimate(last_run_at, current) <= dt.timedelta(0)
        if due:
            return schedstate(
                True, max(self.remaining_estimate(current, current).total_seconds(), 0)
            )
        return schedstate(False, self.remaining_estimate(last_run_at, current).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (json/msgpack-safe) that :func:`schedule_from_dict` turns back."""
        data = {"type": self.kind, **self._fields()}
        if self._tz is not None:
            data["tz"] = self._tz
        return data

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError


def _zone_name(tz: object) -> str:
    """An explicit ``tz=`` as the IANA name it is carried by (checked here, not at first use)."""
    if tz is UTC:
        return "UTC"
    name = getattr(tz, "key", None) if isinstance(tz, dt.tzinfo) else tz
    if not isinstance(name, str):
        raise ScheduleTypeError(f"tz must be an IANA zone name or a ZoneInfo, got {tz!r}")
    try:
        zone(name)
    except ImproperlyConfigured as exc:
        raise ScheduleError(str(exc)) from None
    return name


def _conf_value(app: Any, name: str, default: Any) -> Any:
    """A setting of ``app``: an App (its ``conf``), or the settings mapping a runtime holds."""
    conf = app if isinstance(app, Mapping) else getattr(app, "conf", None)
    return default if conf is None else conf[name]


class schedule(BaseSchedule):  # noqa: N801 - Celery's name
    """Every ``run_every`` (seconds, or a timedelta) after the last run.

    ``relative=True`` rounds each next run time down to the interval's resolution (days,
    hours, minutes or seconds), as Celery does.
    """

    kind = "schedule"

    def __init__(
        self,
        run_every: float | dt.timedelta | None = None,
        relative: bool = False,
        nowfun: NowFun | None = None,
        app: Any = None,
    ) -> None:
        self.run_every = interval(run_every)
        self.relative = relative
        super().__init__(nowfun=nowfun, app=app)

    @property
    def seconds(self) -> float:
        """The interval in seconds."""
        return self.run_every.total_seconds()

    @property
    def human_seconds(self) -> str:
        """The interval as Celery shows it: ``'10.00 seconds'``, ``'1.00 hour'``."""
        return humanize(self.seconds)

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """``after`` plus the interval (rounded down to its resolution when ``relative``)."""
        end = self.maybe_make_aware(after) + self.run_every
        return round_down(end.astimezone(self.tz), self.run_every) if self.relative else end

    def is_due(self, last_run_at: dt.datetime, now: dt.datetime | None = None) -> schedstate:
        """Celery's answer: ``(True, interval)`` when due, else ``(False, seconds left)``."""
        remaining = self.remaining_estimate(last_run_at, now).total_seconds()
        return schedstate(True, self.seconds) if remaining <= 0 else schedstate(False, remaining)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> schedule:
        """The schedule :meth:`to_dict` described."""
        return cls(data["run_every"], relative=bool(data.get("relative", False)))

    def _fields(self) -> dict[str, Any]:
        return {"run_every": self.seconds, "relative": self.relative}

    def __repr__(self) -> str:
        return f"<freq: {self.human_seconds}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, schedule):
            return self.run_every == other.run_every and self.relative == other.relative
        if isinstance(other, dt.timedelta):
            return self.run_every == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
_CRON_RANGES = {
    "minute": (60, 0),
    "hour": (24, 0),
    "day_of_week": (7, 0),
    "day_of_month": (31, 1),
    "month_of_year": (12, 1),
}


class crontab(BaseSchedule):  # noqa: N801 - Celery's name
    """Fire at wall-clock minutes, like cron: ``crontab(hour=7, minute=30, day_of_week='mon')``.

    Each field takes an int, a crontab string (``'*/15'``, ``'1-5'``, ``'0-30/10'``,
    ``'1,3,5'``, ``'mon-fri'``, ``'jan-mar'``) or an iterable of ints. ``day_of_week`` runs
    0-6 with Sunday = 0. A day fires when its month, day of month *and* day of week all match
    (Celery's rule). ``tz`` overrides the app's ``timezone``; see the module doc for DST.
    """

    kind = "crontab"

    def __init__(
        self,
        minute: Any = "*",
        hour: Any = "*",
        day_of_week: Any = "*",
        day_of_month: Any = "*",
        month_of_year: Any = "*",
        nowfun: NowFun | None = None,
        app: Any = None,
        tz: str | dt.tzinfo | None = None,
    ) -> None:
        given = (minute, hour, day_of_week, day_of_month, month_of_year)
        fields = {
            name: expand("*" if v is None else v, *_CRON_RANGES[name])
            for name, v in zip(_CRON_FIELDS, given, strict=True)
        }
        self.spec = CronSpec(**fields)
        # As given for repr and to_dict: strings and ints kept, iterables as sorted lists.
        self._orig = {
            name: v if isinstance(v, str | int) else "*" if v is None else sorted(fields[name])
            for name, v in zip(_CRON_FIELDS, given, strict=True)
        }
        super().__init__(nowfun=nowfun, app=app, tz=tz)

    minute = property(lambda self: set(self.spec.minute), doc="The minutes that fire.")
    hour = property(lambda self: set(self.spec.hour), doc="The hours that fire.")
    day_of_week = property(lambda self: set(self.spec.day_of_week), doc="Weekdays, Sunday=0.")
    day_of_month = property(lambda self: set(self.spec.day_of_month), doc="Days of the month.")
    month_of_year = property(lambda self: set(self.spec.month_of_year), doc="Months, 1-12.")

    @classmethod
    def from_string(cls, line: str, **kwargs: Any) -> crontab:
        """A crontab from a classic cron line: ``'*/5 9-17 * * mon-fri'`` (m h dom mon dow)."""
        fields = line.split()
        if len(fields) != 5:
            raise ParseException(f"a crontab line has 5 fields (m h dom mon dow), got {line!r}")
        minute, hour, dom, moy, dow = fields
        return cls(minute, hour, dow, dom, moy, **kwargs)

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """The first firing strictly after ``after``, aware in the schedule's zone."""
        aware = self.maybe_make_aware(after)
        return next_firing(self.spec, aware, self.tz, follows_clock=self.spec.every_hour)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> crontab:
        """The crontab :meth:`to_dict` described."""
        return cls(**{name: data.get(name, "*") for name in _CRON_FIELDS}, tz=data.get("tz"))

    def _fields(self) -> dict[str, Any]:
        return dict(self._orig)

    def __repr__(self) -> str:
        o = self._orig
        return (
            f"<crontab: {o['minute']} {o['hour']} {o['day_of_month']} {o['month_of_year']} "
            f"{o['day_of_week']} (m/h/dM/MY/d)>"
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, crontab):
            return self.spec == other.spec and self._tz == other._tz
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class solar(BaseSchedule):  # noqa: N801 - Celery's name
    """Fire at a sun event at a place: ``solar('sunset', 52.52, 13.40)``.

    Events: ``dawn_astronomical``, ``dawn_nautical``, ``dawn_civil``, ``sunrise``,
    ``solar_noon``, ``sunset``, ``dusk_civil``, ``dusk_nautical``, ``dusk_astronomical``.
    Latitude -90..90, longitude -180..180 (east positive). Needs ``celeriac[solar]`` (PyEphem).
    """

    kind = "solar"

    def __init__(
        self, event: str, lat: float, lon: float, nowfun: NowFun | None = None, app: Any = None
    ) -> None:
        _solar.check_place(event, lat, lon)
        _solar.load_ephem()
        self.event, self.lat, self.lon = event, lat, lon
        super().__init__(nowfun=nowfun, app=app)

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """The first event strictly after ``after``, in UTC.

        Days without the event (polar day or night) are skipped. Where none is found within
        400 days, raises :class:`ScheduleError`: PyEphem finds no sunrise or twilight at all
        within about half a degree of a pole (the sun's altitude hardly changes in a day).
        """
        found = _solar.next_event(self.event, self.lat, self.lon, self.maybe_make_aware(after))
        if found is None:
            raise ScheduleError(f"{self!r} does not happen within 400 days of {after}")
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> solar:
        """The solar schedule :meth:`to_dict` described."""
        return cls(data["event"], data["lat"], data["lon"])

    def _fields(self) -> dict[str, Any]:
        return {"event": self.event, "lat": self.lat, "lon": self.lon}

    def __repr__(self) -> str:
        return f"<solar: {self.event} at latitude {self.lat}, longitude: {self.lon}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, solar):
            return (self.event, self.lat, self.lon) == (other.event, other.lat, other.lon)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_KINDS: dict[str, type[Any]] = {"schedule": schedule, "crontab": crontab, "solar": solar}


def schedule_from_dict(data: dict[str, Any]) -> BaseSchedule:
    """The schedule a ``to_dict()`` result describes (``data['type']`` says which kind)."""
    kind = data.get("type") if isinstance(data, dict) else None
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ScheduleError(
            f"not a schedule dict (type must be one of {', '.join(_KINDS)}): {data!r}"
        )
    result: BaseSchedule = cls.from_dict(data)
    return result


def maybe_schedule(
    s: float | dt.timedelta | BaseSchedule | None, relative: bool = False, app: Any = None
) -> BaseSchedule | None:
    """Celery's helper: seconds or a timedelta become a :class:`schedule`; schedules pass."""
    if s is None or isinstance(s, BaseSchedule):
        if s is not None and app is not None:
            s.app = app
        return s
    return schedule(s, relative, app=app)
