"""crontab: Celery's field syntax and errors, and next_run against a minute-by-minute reference.

The reference (:func:`reference_next`) is written to be obviously right rather than fast: it
walks real instants one minute at a time and applies the DST policy of the module docstring
literally: a job that runs every hour fires at each instant whose wall-clock minute matches;
a job at set hours fires at an instant whose wall-clock minute matches and is that minute's
first occurrence, or right after a gap in which some skipped wall-clock minute matches.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import zoneinfo
from typing import Any

import msgpack
import pytest
from croniter import croniter
from hypothesis import assume, given
from hypothesis import strategies as st

from celeriac.schedules import (
    ParseException,
    crontab,
    schedule_from_dict,
)

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
ZONES = {"UTC": UTC, "Europe/Berlin": BERLIN, "America/New_York": NEW_YORK}


# -- the reference -----------------------------------------------------------------------------


def matches(c: crontab, wall: dt.datetime) -> bool:
    """Does wall-clock minute ``wall`` match every field of ``c``?"""
    return (
        wall.minute in c.minute
        and wall.hour in c.hour
        and wall.day in c.day_of_month
        and wall.month in c.month_of_year
        and wall.isoweekday() % 7 in c.day_of_week
    )


def day_matches(c: crontab, day: dt.date) -> bool:
    """Could any minute of ``day`` match (month, day of month and weekday)?"""
    return matches(c, dt.datetime(day.year, day.month, day.day, min(c.hour), min(c.minute)))


def fires_at(c: crontab, instant: dt.datetime, tz: dt.tzinfo) -> bool:
    """The DST policy at one minute-aligned instant."""
    local = instant.astimezone(tz)
    wall = local.replace(tzinfo=None)
    if len(c.hour) == 24:  # a job that runs every hour follows the clock as it is
        return matches(c, wall)
    if local.fold == 0 and matches(c, wall):
        return True
    before = (instant - MINUTE).astimezone(tz).replace(tzinfo=None)
    skipped = before + MINUTE
    while skipped < wall:  # wall-clock minutes the clock jumped over just before this instant
        if matches(c, skipped):
            return True
        skipped += MINUTE
    return False


def reference_next(c: crontab, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Walk instants minute by minute; skip whole local days that cannot match (the zones
    tested have no DST change at midnight, so a gap never spans two days)."""
    instant = after.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
    while True:
        local = instant.astimezone(tz)
        if not day_matches(c, local.date()):
            midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tz)
            instant = max(midnight.astimezone(UTC), instant + MINUTE)
            continue
        if fires_at(c, instant, tz):
            return local
        instant += MINUTE


# -- strategies --------------------------------------------------------------------------------


def values(low: int, high: int, size: int) -> st.SearchStrategy[set[int]]:
    """Non-empty sets of field values."""
    return st.sets(st.integers(low, high), min_size=1, max_size=size)


@st.composite
def crontabs(draw: st.DrawFn) -> crontab:
    """Any crontab that fires at all, with dense and sparse fields."""
    every = st.just("*")
    fields = {
        "minute": draw(st.one_of(every, values(0, 59, 4), st.sampled_from(["*/15", "0-30/10"]))),
        "hour": draw(st.one_of(every, values(0, 23, 4), st.just("1-3"))),
        "day_of_week": draw(st.one_of(every, values(0, 6, 3), st.just("mon-fri"))),
        "day_of_month": draw(st.one_of(every, every, values(1, 31, 3))),
        "month_of_year": draw(st.one_of(every, every, values(1, 12, 3))),
    }
    try:
        return crontab(**fields)
    except ParseException:
        assume(False)
        raise


# DST changes in 2026: Europe 29 March and 25 October (01:00 UTC), US 8 March and 1 November.
TRANSITIONS = [
    dt.datetime(2026, 3, 29, 1, tzinfo=UTC),
    dt.datetime(2026, 10, 25, 1, tzinfo=UTC),
    dt.datetime(2026, 3, 8, 7, tzinfo=UTC),
    dt.datetime(2026, 11, 1, 6, tzinfo=UTC),
]
anywhere = st.datetimes(dt.datetime(2023, 1, 1), dt.datetime(2030, 12, 31), timezones=st.just(UTC))
near_dst = st.builds(
    lambda t, s: t + dt.timedelta(seconds=s),
    st.sampled_from(TRANSITIONS),
    st.integers(-2 * 86400, 86400),
)
near_leap_day = st.builds(
    lambda s: dt.datetime(2028, 2, 28, tzinfo=UTC) + dt.timedelta(seconds=s),
    st.integers(-86400, 3 * 86400),
)
instants = st.one_of(anywhere, near_dst, near_leap_day)


# -- next_run against the reference -----------------------------------------------------------


@pytest.mark.property
@given(c=crontabs(), after=instants, zone=st.sampled_from(sorted(ZONES)))
def test_next_run_matches_the_minute_by_minute_reference(
    c: crontab, after: dt.datetime, zone: str
) -> None:
    """Three firings in a row agree with the reference in UTC, Berlin and New York."""
    tz = ZONES[zone]
    bound = crontab.from_dict({**c.to_dict(), "tz": zone})
    moment = after
    for _ in range(3):
        expected = reference_next(c, moment, tz)
        got = bound.next_run(moment)
        # Instants, not wall times: Python compares two datetimes of one zone by wall time and
        # ignores fold, so 01:00 EDT and 01:00 EST (2026-11-01, New York) would look equal.
        assert got.timestamp() == expected.timestamp()
        assert got.timestamp() > moment.timestamp()
        moment = got


@pytest.mark.property
@given(c=crontabs(), after=anywhere)
def test_next_run_agrees_with_croniter_in_utc(c: crontab, after: dt.datetime) -> None:
    """A second, independent reference: croniter with day_or=False (Celery's AND of days).

    Only in UTC: around DST changes croniter fires a repeated 02:30 twice, which is what the
    policy here avoids.
    """
    fields = (c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week)
    line = " ".join(",".join(map(str, sorted(values))) for values in fields)
    assert c.next_run(after) == croniter(line, after, day_or=False).get_next(dt.datetime)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize(
    "fields",
    [
        {"minute": "*"},
        {"minute": "*/15"},
        {"minute": 30},
        {"minute": 30, "hour": 2},
        {"minute": 30, "hour": 1},
        {"minute": "*/10", "hour": "1-3"},
    ],
)
@pytest.mark.parametrize("transition", TRANSITIONS)
def test_every_firing_across_a_dst_day_matches_the_reference(
    zone: str, fields: dict[str, Any], transition: dt.datetime
) -> None:
    """Every firing from 12 h before to 12 h after each 2026 DST change, exhaustively."""
    c = crontab(**fields, tz=zone)
    moment, end = transition - dt.timedelta(hours=12), transition + dt.timedelta(hours=12)
    while moment < end:
        expected = reference_next(c, moment, ZONES[zone])
        assert c.next_run(moment) == expected
        moment = expected


def _firings(c: crontab, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    found, moment = [], start
    while (moment := c.next_run(moment)) < end:
        found.append(moment)
    return found


@pytest.mark.parametrize(
    ("zone", "day", "expected_utc"),
    [
        ("Europe/Berlin", dt.date(2026, 3, 29), dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        ("Europe/Berlin", dt.date(2026, 10, 25), dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("America/New_York", dt.date(2026, 3, 8), dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        ("America/New_York", dt.date(2026, 11, 1), dt.datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),
    ],
)
def test_a_daily_0230_job_runs_exactly_once_on_each_dst_day(
    zone: str, day: dt.date, expected_utc: dt.datetime
) -> None:
    """Skipped (spring) or repeated (Berlin's fall) 02:30 runs once: at the gap's end or first."""
    tz = ZONES[zone]
    c = crontab(minute=30, hour=2, tz=zone)
    start = dt.datetime.combine(day, dt.time(), tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
    assert [f.astimezone(UTC) for f in _firings(c, start, end)] == [expected_utc]


def test_spring_forward_fires_a_skipped_time_once_at_the_end_of_the_gap() -> None:
    """02:30 does not exist in Berlin on 2026-03-29: it fires once, at 03:00 CEST."""
    c = crontab(minute=30, hour=2, tz="Europe/Berlin")
    day = _firings(
        c, dt.datetime(2026, 3, 28, 22, tzinfo=UTC), dt.datetime(2026, 3, 29, 22, tzinfo=UTC)
    )
    assert day == [dt.datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)]
    assert day[0].utcoffset() == dt.timedelta(hours=2)


def test_fall_back_fires_a_repeated_time_once_at_its_first_occurrence() -> None:
    """01:30 happens twice in New York on 2026-11-01: it fires once, at 01:30 EDT."""
    c = crontab(minute=30, hour=1, tz="America/New_York")
    day = _firings(
        c, dt.datetime(2026, 11, 1, 4, tzinfo=UTC), dt.datetime(2026, 11, 2, 4, tzinfo=UTC)
    )
    assert [f.astimezone(UTC) for f in day] == [dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]


def test_minutes_skipped_by_one_gap_fire_once_together() -> None:
    """02:00-02:45 every 15 min in Berlin's spring gap: one firing, at 03:00 CEST."""
    c = crontab(minute="*/15", hour=2, tz="Europe/Berlin")
    got = _firings(
        c, dt.datetime(2026, 3, 28, 23, tzinfo=UTC), dt.datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
    )
    assert [f.astimezone(UTC) for f in got] == [
        dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        *(dt.datetime(2026, 3, 30, 0, m, tzinfo=UTC) for m in (0, 15)),
    ]


def test_an_hourly_job_skips_the_missing_half_hour_like_cron() -> None:
    """minute=30 every hour in Berlin's spring change: 01:30 CET, then 03:30 CEST (no 03:00)."""
    c = crontab(minute=30, tz="Europe/Berlin")
    got = _firings(
        c, dt.datetime(2026, 3, 29, 0, 0, tzinfo=UTC), dt.datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    )
    assert [f.strftime("%H:%M%z") for f in got] == ["01:30+0100", "03:30+0200"]


def test_every_15_minutes_keeps_going_through_the_repeated_hour() -> None:
    """*/15 in New York's fall-back: every 15 real minutes, both passes of 01:xx fire."""
    c = crontab(minute="*/15", tz="America/New_York")
    start = dt.datetime(2026, 11, 1, 4, 50, tzinfo=UTC)  # 00:50 EDT
    got = _firings(c, start, start + dt.timedelta(hours=3))
    utc = [f.astimezone(UTC) for f in got]  # same-zone subtraction would compare wall clocks
    assert [b - a for a, b in itertools.pairwise(utc)] == [dt.timedelta(minutes=15)] * 11
    assert [f.strftime("%H:%M") for f in got[:9]] == [
        "01:00", "01:15", "01:30", "01:45", "01:00", "01:15", "01:30", "01:45", "02:00",
    ]  # fmt: skip


def test_seed_example_fires_on_monday_at_seven_thirty() -> None:
    """DESIGN.md's crontab(hour=7, minute=30, day_of_week=1) gives the next Monday 07:30."""
    c = crontab(hour=7, minute=30, day_of_week=1)
    got = c.next_run(dt.datetime(2026, 12, 1, 20, 36, tzinfo=UTC))  # a Tuesday
    assert got == dt.datetime(2026, 12, 7, 7, 30, tzinfo=UTC)
    assert got.strftime("%A %H:%M") == "Monday 07:30"
    assert c.next_run(got) == dt.datetime(2026, 12, 14, 7, 30, tzinfo=UTC)


def test_leap_day_entries_wait_for_the_next_february_29() -> None:
    """Feb 29 fires only in leap years; Feb 29 that is a Sunday only in 2032."""
    leap = crontab(0, 0, day_of_month=29, month_of_year=2)
    assert leap.next_run(dt.datetime(2025, 3, 1, tzinfo=UTC)) == dt.datetime(
        2028, 2, 29, tzinfo=UTC
    )
    sunday = crontab(0, 0, day_of_week="sun", day_of_month=29, month_of_year="feb")
    assert sunday.next_run(dt.datetime(2025, 1, 1, tzinfo=UTC)) == dt.datetime(
        2032, 2, 29, tzinfo=UTC
    )


def test_next_run_is_strictly_after_its_argument() -> None:
    """A firing time given back to next_run yields the following firing, not itself."""
    c = crontab(minute=0, hour="*/6")
    first = c.next_run(dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
    assert first == dt.datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert c.next_run(dt.datetime(2026, 1, 1, 5, 59, 59, 999999, tzinfo=UTC)) == first


# -- is_due, serialisation ---------------------------------------------------------------


@pytest.mark.property
@given(c=crontabs(), last=anywhere, now=anywhere)
def test_is_due_agrees_with_next_run(c: crontab, last: dt.datetime, now: dt.datetime) -> None:
    """Due exactly when the first firing after the last run is not in the future."""
    state = c.is_due(last, now=now)
    assert state.is_due == (c.next_run(last) <= now)
    expected = c.next_run(now) - now if state.is_due else c.next_run(last) - now
    assert state.next == max(expected.total_seconds(), 0)


@pytest.mark.property
@given(c=crontabs(), zone=st.sampled_from([None, "Europe/Berlin"]))
def test_to_dict_survives_json_and_msgpack(c: crontab, zone: str | None) -> None:
    """to_dict() is plain data: through json or msgpack and back it is an equal crontab."""
    if zone is not None:
        c = crontab.from_dict({**c.to_dict(), "tz": zone})
    data = c.to_dict()
    assert schedule_from_dict(json.loads(json.dumps(data))) == c
    assert schedule_from_dict(msgpack.unpackb(msgpack.packb(data))) == c


def test_remaining_estimate_counts_real_time_across_the_fall_back_hour() -> None:
    """At 01:30 EST (the second 01:30 of 2026-11-01 in New York) a 01:15 firing that ran at
    01:15 EDT is 75 real minutes behind, not 15 (what wall-clock arithmetic would say)."""
    daily = crontab(minute=15, hour=1, tz="America/New_York")
    last = dt.datetime(2026, 10, 31, 1, 15, tzinfo=NEW_YORK)
    now = dt.datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)  # EST: 06:30 UTC
    assert daily.next_run(last).astimezone(dt.UTC) == dt.datetime(2026, 11, 1, 5, 15, tzinfo=dt.UTC)
    assert daily.remaining_estimate(last, now) == dt.timedelta(minutes=-75)
