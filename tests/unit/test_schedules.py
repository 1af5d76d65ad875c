"""Interval and solar schedules, is_due/remaining_estimate, time zones and enable_utc."""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import json
import pathlib
import sys

import pytest
from astral import Observer
from astral import sun as astral_sun
from hypothesis import given
from hypothesis import strategies as st

from celeriac import App
from celeriac._clock import FakeClock
from celeriac.exceptions import CeleriacError
from celeriac.schedules import (
    ScheduleError,
    crontab,
    maybe_schedule,
    schedstate,
    schedule,
    schedule_from_dict,
    solar,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


# -- schedule (intervals) ----------------------------------------------------------------------


def test_interval_next_run_is_last_run_plus_the_interval() -> None:
    """Seconds and timedeltas give the same schedule; next_run adds the interval."""
    assert schedule(90).next_run(T0) == T0 + dt.timedelta(seconds=90)
    assert schedule(dt.timedelta(minutes=1, seconds=30)) == schedule(90.0)
    assert schedule(90) == dt.timedelta(seconds=90)


def test_interval_is_absolute_across_dst() -> None:
    """An hourly interval is 3600 s even when Berlin's clocks jump that night."""
    s = schedule(3600, app=App("t", timezone="Europe/Berlin"))
    before = dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET
    assert s.next_run(before) - before == dt.timedelta(hours=1)


def test_interval_is_due_follows_celery() -> None:
    """(False, seconds left) before the interval is over; (True, interval) when it is."""
    s = schedule(10)
    assert s.is_due(T0, now=T0 + dt.timedelta(seconds=4)) == schedstate(False, 6.0)
    assert s.is_due(T0, now=T0 + dt.timedelta(seconds=10)) == schedstate(True, 10.0)
    assert s.is_due(T0, now=T0 + dt.timedelta(hours=1)) == (True, 10.0)


def test_remaining_estimate_reads_nowfun_then_the_apps_clock() -> None:
    """Time is injected: nowfun when given, else the app's Clock; nothing sleeps."""
    assert schedule(60, nowfun=lambda: T0 + dt.timedelta(seconds=45)).remaining_estimate(
        T0
    ) == dt.timedelta(seconds=15)
    clock = FakeClock(start=T0.timestamp())
    s = schedule(60, app=App("t", clock=clock))
    assert s.remaining_estimate(T0) == dt.timedelta(seconds=60)
    clock.advance(75)
    assert s.remaining_estimate(T0) == dt.timedelta(seconds=-15)
    assert s.is_due(T0).is_due


def test_relative_rounds_down_to_the_intervals_resolution() -> None:
    """relative=True: hourly runs land on the hour, daily runs at midnight (Celery's rule)."""
    late = dt.datetime(2026, 12, 1, 10, 20, 33, tzinfo=UTC)
    assert schedule(3600, relative=True).next_run(late) == dt.datetime(2026, 12, 1, 11, tzinfo=UTC)
    assert schedule(dt.timedelta(days=1), relative=True).next_run(late) == dt.datetime(
        2026, 12, 2, tzinfo=UTC
    )
    assert schedule(5, relative=True).next_run(late + dt.timedelta(microseconds=5)) == dt.datetime(
        2026, 12, 1, 10, 20, 38, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("run_every", "shown"),
    [(10, "<freq: 10.00 seconds>"), (3600, "<freq: 1.00 hour>"), (86400 * 2, "<freq: 2.00 days>")],
)
def test_interval_repr_is_celerys(run_every: float, shown: str) -> None:
    """Celery's '<freq: ...>' display."""
    assert repr(schedule(run_every)) == shown


@pytest.mark.parametrize("bad", [0, -5, dt.timedelta(0), True, "10", None])
def test_an_interval_must_be_positive_seconds_or_a_timedelta(bad: object) -> None:
    """Zero, negative, bools, strings and None are refused as ScheduleError (a ValueError)."""
    with pytest.raises(ScheduleError, match="run_every"):
        schedule(bad)  # type: ignore[arg-type]


@given(seconds=st.floats(0.001, 1e7), relative=st.booleans())
def test_interval_to_dict_survives_json(seconds: float, relative: bool) -> None:
    """schedule.to_dict() through json and back is an equal schedule."""
    s = schedule(seconds, relative=relative)
    assert schedule_from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_maybe_schedule_turns_numbers_and_timedeltas_into_intervals() -> None:
    """Celery's maybe_schedule: numbers and timedeltas become schedule; schedules pass."""
    c = crontab()
    assert maybe_schedule(30) == schedule(30)
    assert maybe_schedule(dt.timedelta(seconds=30), relative=True) == schedule(30, relative=True)
    assert maybe_schedule(c) is c
    assert maybe_schedule(None) is None


def test_schedule_from_dict_refuses_an_unknown_kind() -> None:
    """A dict without a known 'type' is an error naming the kinds."""
    with pytest.raises(ScheduleError, match="schedule, crontab, solar"):
        schedule_from_dict({"type": "cron"})


# -- crontab with an app: timezone and enable_utc ----------------------------------------------


def test_crontab_uses_the_apps_timezone() -> None:
    """Bound to an app with timezone Europe/Berlin, 07:30 means 07:30 in Berlin."""
    c = crontab(minute=30, hour=7, app=App("t", timezone="Europe/Berlin"))
    got = c.next_run(dt.datetime(2026, 7, 1, tzinfo=UTC))
    assert got.astimezone(UTC) == dt.datetime(2026, 7, 1, 5, 30, tzinfo=UTC)
    assert str(got.tzinfo) == "Europe/Berlin"


def test_a_settings_mapping_serves_as_the_app() -> None:
    """A runtime holding only frozen settings can bind schedules to them."""
    conf = App("t", timezone="America/New_York").conf.freeze()
    got = crontab(minute=0, hour=9, app=conf).next_run(dt.datetime(2026, 7, 1, tzinfo=UTC))
    assert got.astimezone(UTC) == dt.datetime(2026, 7, 1, 13, 0, tzinfo=UTC)


def test_enable_utc_decides_how_naive_datetimes_are_read() -> None:
    """Naive means UTC with enable_utc (default), Berlin wall time without it."""
    naive = dt.datetime(2026, 7, 1, 6, 0)
    utc_app = App("t", timezone="Europe/Berlin")
    local_app = App("t", timezone="Europe/Berlin", enable_utc=False)
    at_seven_thirty = crontab(minute=30, hour=7)
    at_seven_thirty.app = utc_app
    assert at_seven_thirty.next_run(naive).date() == dt.date(2026, 7, 2)  # 06:00 UTC is 08:00
    at_seven_thirty.app = local_app
    assert at_seven_thirty.next_run(naive) == dt.datetime(
        2026, 7, 1, 7, 30, tzinfo=at_seven_thirty.tz
    )


def test_crontab_is_due_and_remaining_estimate() -> None:
    """Due once the next slot after the last run has passed; next is counted from now."""
    c = crontab(hour=7, minute=30, day_of_week=1)
    last = dt.datetime(2026, 11, 30, 7, 30, tzinfo=UTC)  # a Monday slot
    before = dt.datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    assert c.remaining_estimate(last, now=before) == dt.timedelta(minutes=30)
    assert c.is_due(last, now=before) == schedstate(False, 1800.0)
    late = dt.datetime(2026, 12, 7, 7, 30, 1, tzinfo=UTC)
    assert c.is_due(last, now=late) == schedstate(True, 7 * 86400 - 1.0)


# -- solar ------------------------------------------------------------------------------------

PLACES = {"berlin": (52.52, 13.40), "new_york": (40.71, -74.01), "sydney": (-33.87, 151.21)}
# Days on which every event happens at every place: on the threshold days (Berlin's first
# astronomical dusk after the white nights) which day comes first is ill-conditioned.
DAYS = [dt.date(2026, 3, 20), dt.date(2026, 5, 5), dt.date(2026, 12, 21), dt.date(2028, 2, 29)]
CELERY_EVENTS = [
    "dawn_astronomical",
    "dawn_nautical",
    "dawn_civil",
    "sunrise",
    "solar_noon",
    "sunset",
    "dusk_civil",
    "dusk_nautical",
    "dusk_astronomical",
]
DEPRESSION = {"astronomical": 18, "nautical": 12, "civil": 6}


def astral_event(event: str, observer: Observer, date: dt.date) -> dt.datetime | None:
    """The event by astral (NOAA's algorithm) on ``date``, in UTC; None if it does not happen."""
    kind, _, depth = event.partition("_")
    try:
        if event == "solar_noon":
            return astral_sun.noon(observer, date)
        if kind in ("sunrise", "sunset"):
            found: dt.datetime = getattr(astral_sun, kind)(observer, date)
        else:
            found = getattr(astral_sun, kind)(observer, date, depression=DEPRESSION[depth])
    except ValueError:  # astral: the sun does not reach that depression that day
        return None
    return found


def astral_next(event: str, lat: float, lon: float, after: dt.datetime) -> dt.datetime:
    """The first event after ``after`` by astral, looking up to 120 days ahead."""
    observer = Observer(latitude=lat, longitude=lon)
    for offset in range(-1, 120):
        found = astral_event(event, observer, after.date() + dt.timedelta(days=offset))
        if found is not None and found > after:
            return found
    raise AssertionError("astral finds no such event")


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("event", CELERY_EVENTS)
def test_solar_next_run_agrees_with_astral_within_two_minutes(
    place: str, day: dt.date, event: str
) -> None:
    """Every Celery event at three places on four days, against an independent library."""
    lat, lon = PLACES[place]
    after = dt.datetime.combine(day, dt.time(), UTC)
    got = solar(event, lat, lon).next_run(after)
    reference = astral_next(event, lat, lon, after)
    assert abs(got - reference) < dt.timedelta(minutes=2)
    assert got > after


def test_solar_skips_berlins_white_nights() -> None:
    """No astronomical dusk in Berlin around midsummer: the next one is in late July."""
    got = solar("dusk_astronomical", 52.52, 13.40).next_run(dt.datetime(2026, 6, 21, tzinfo=UTC))
    reference = astral_next("dusk_astronomical", 52.52, 13.40, dt.datetime(2026, 6, 21, tzinfo=UTC))
    assert abs(got - reference) < dt.timedelta(days=3)
    assert got > dt.datetime(2026, 7, 15, tzinfo=UTC)


def test_solar_skips_the_polar_night() -> None:
    """At 80° N there is no sunrise from late October: the next one is in February."""
    got = solar("sunrise", 80, 15).next_run(dt.datetime(2026, 12, 1, tzinfo=UTC))
    assert dt.datetime(2027, 2, 10, tzinfo=UTC) < got < dt.datetime(2027, 3, 1, tzinfo=UTC)


def test_solar_at_the_pole_says_the_event_is_not_found() -> None:
    """At 90° PyEphem finds no sunrise: a clear ScheduleError, not an endless search."""
    with pytest.raises(ScheduleError, match="does not happen within 400 days"):
        solar("sunrise", 90, 0).next_run(dt.datetime(2026, 12, 1, tzinfo=UTC))


def test_solar_next_run_after_a_firing_is_the_next_days() -> None:
    """Given back its own firing time, solar returns the next day's event, not the same one."""
    s = solar("sunset", 52.52, 13.40)
    first = s.next_run(dt.datetime(2026, 6, 1, tzinfo=UTC))
    second = s.next_run(first)
    assert dt.timedelta(hours=23, minutes=50) < second - first < dt.timedelta(hours=24, minutes=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("moonrise", 0, 0), 'Argument event "moonrise" is invalid, must be one of dawn_'),
        (("sunset", 91, 0), "Argument latitude 91 is invalid, must be between -90 and 90."),
        (("sunset", 0, -181), "Argument longitude -181 is invalid, must be between -180 and 180."),
        (("sunset", "52", 0), "latitude must be a number"),
    ],
)
def test_solar_arguments_are_checked_with_celerys_messages(
    args: tuple[object, ...], message: str
) -> None:
    """Event name, latitude and longitude are checked as Celery does."""
    with pytest.raises(ScheduleError) as caught:
        solar(*args)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert isinstance(caught.value, CeleriacError)


def test_solar_without_ephem_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyEphem installed, solar() says which extra to install."""
    monkeypatch.setitem(sys.modules, "ephem", None)
    with pytest.raises(ImportError, match=r"celeriac\[solar\]"):
        solar("sunset", 0, 0)


def test_solar_repr_equality_and_dict() -> None:
    """Celery's repr; equal by event and place; to_dict through json and back."""
    s = solar("dusk_civil", 52.52, 13.4)
    assert repr(s) == "<solar: dusk_civil at latitude 52.52, longitude: 13.4>"
    assert s == solar("dusk_civil", 52.52, 13.4)
    assert s != solar("dusk_civil", 52.52, 13.5)
    assert schedule_from_dict(json.loads(json.dumps(s.to_dict()))) == s


SCHEDULE_MODULES = ["schedules", "_cron", "_zones", "_solar", "_intervals", "_beat", "_beatplan"]
FORBIDDEN = {"socket", "threading", "asyncio", "subprocess", "zmq", "pykka", "multiprocessing"}


@pytest.mark.parametrize("module", SCHEDULE_MODULES)
def test_schedule_modules_stay_pure(module: str) -> None:
    """The schedules core imports no sockets, threads, pykka or zmq (DESIGN.md section 6)."""
    source = importlib.import_module(f"celeriac.{module}").__file__
    assert source is not None
    tree = ast.parse(pathlib.Path(source).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} & FORBIDDEN == set()
    assert imported, "the parse found the module's imports"
