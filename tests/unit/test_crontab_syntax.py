"""crontab's field syntax (Celery's, plus month names), its errors, repr and equality."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac.schedules import ParseException, ScheduleError, crontab, crontab_parser

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("spec", "max_", "min_", "expected"),
    [
        ("*", 7, 0, set(range(7))),
        ("*/15", 60, 0, {0, 15, 30, 45}),
        ("1-5", 60, 0, {1, 2, 3, 4, 5}),
        ("0-30/10", 60, 0, {0, 10, 20, 30}),
        ("1,3,5", 60, 0, {1, 3, 5}),
        ("1,13,30-45,50-59/2", 60, 0, {1, 13, *range(30, 46), *range(50, 60, 2)}),
        ("mon-fri", 7, 0, {1, 2, 3, 4, 5}),
        ("sun", 7, 0, {0}),
        ("fri-mon", 7, 0, {5, 6, 0, 1}),
        ("monday,Saturday", 7, 0, {1, 6}),
        ("22-2", 24, 0, {22, 23, 0, 1, 2}),
        ("*/3", 31, 1, {1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31}),
        ("jan", 12, 1, {1}),
        ("dec", 12, 1, {12}),
        ("jan-mar,oct", 12, 1, {1, 2, 3, 10}),
        ("2-12/2", 12, 1, {2, 4, 6, 8, 10, 12}),
    ],
)
def test_parser_expands_each_syntax_form(
    spec: str, max_: int, min_: int, expected: set[int]
) -> None:
    """Stars, steps, ranges, steps on ranges, lists, wrapping ranges, weekday and month names."""
    assert crontab_parser(max_, min_).parse(spec) == expected


@st.composite
def field_parts(draw: st.DrawFn) -> tuple[str, set[int]]:
    """One comma-separated part of a minute field and the values it means, built together."""
    low = draw(st.integers(0, 59))
    high = draw(st.integers(low, 59))
    step = draw(st.integers(1, 30))
    return draw(
        st.sampled_from(
            [
                (str(low), {low}),
                (f"{low}-{high}", set(range(low, high + 1))),
                (f"{low}-{high}/{step}", set(range(low, high + 1, step))),
                (f"*/{step}", set(range(0, 60, step))),
                ("*", set(range(60))),
            ]
        )
    )


@pytest.mark.property
@given(parts=st.lists(field_parts(), min_size=1, max_size=4))
def test_a_field_is_the_union_of_its_parts(parts: list[tuple[str, set[int]]]) -> None:
    """'a,b-c,d-e/s,*/s': each part expands as cron says and a list is their union."""
    spec = ",".join(text for text, _ in parts)
    assert crontab_parser(60).parse(spec) == set().union(*(values for _, values in parts))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minute": "60"}, "Invalid end range: 60 > 59."),
        ({"hour": 24}, "Invalid crontab pattern.  Valid range is 0-23. '24' was found."),
        ({"day_of_month": "0"}, "Invalid beginning range: 0 < 1."),
        ({"month_of_year": 13}, "Valid range is 1-12. '13' was found."),
        ({"day_of_week": "7"}, "Invalid end range: 7 > 6."),
        ({"minute": "1,,2"}, "empty part"),
        ({"minute": "*/"}, "empty step"),
        ({"minute": "0-30/"}, "empty step"),
        ({"minute": "*/0"}, "invalid step '0'"),
        ({"minute": "-5"}, "negative numbers are not supported"),
        ({"day_of_week": "funday"}, "Invalid weekday literal 'funday'."),
        ({"month_of_year": "janvier2"}, "Invalid month literal 'janvier2'."),
        ({"day_of_month": 31, "month_of_year": "feb"}, "never fires"),
        ({"minute": set()}, "at least one value"),
    ],
)
def test_bad_fields_raise_a_value_error_saying_what_is_wrong(
    kwargs: dict[str, Any], message: str
) -> None:
    """Celery's messages for bad values; ParseException is a ValueError and a CeleriacError."""
    with pytest.raises(ParseException) as caught:
        crontab(**kwargs)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad", [1.5, True, object()])
def test_a_field_of_the_wrong_type_is_a_type_error(bad: object) -> None:
    """Floats, bools and other objects are refused with Celery's 'needs to be' message."""
    with pytest.raises(TypeError, match="needs to be of any of the following types"):
        crontab(minute=bad)


def test_ints_lists_and_sets_are_fields_too() -> None:
    """Celery accepts an int, a list or a set for any field."""
    c = crontab(minute=[0, 30], hour={8, 20}, day_of_week=range(1, 6), month_of_year=(1, 7))
    assert (c.minute, c.hour, c.day_of_week, c.month_of_year) == (
        {0, 30},
        {8, 20},
        {1, 2, 3, 4, 5},
        {1, 7},
    )


def test_a_generator_field_is_kept_as_a_sorted_list() -> None:
    """A one-shot iterable is read once: repr and to_dict show its values, not an empty list."""
    c = crontab(minute=(m for m in (30, 0)), hour=range(8, 10))
    assert c.to_dict()["minute"] == [0, 30]
    assert repr(c) == "<crontab: [0, 30] [8, 9] * * * (m/h/dM/MY/d)>"
    assert crontab.from_dict(c.to_dict()) == c


def test_from_string_reads_a_cron_line_in_cron_order() -> None:
    """'m h dom mon dow' as in crontab(5); a line with the wrong field count is refused."""
    assert crontab.from_string("*/5 9-17 1 jan mon-fri") == crontab(
        "*/5", "9-17", day_of_week="mon-fri", day_of_month=1, month_of_year=1
    )
    with pytest.raises(ParseException, match="5 fields"):
        crontab.from_string("* * * *")


def test_unknown_time_zone_is_refused_with_a_hint() -> None:
    """A misspelt tz fails at construction and names the closest zone; so does a bad type."""
    with pytest.raises(ScheduleError, match="did you mean 'Europe/Berlin'"):
        crontab(tz="Europe/Berln")
    with pytest.raises(TypeError, match="IANA zone name"):
        crontab(tz=dt.timezone(dt.timedelta(hours=1)))


def test_a_zoneinfo_tz_is_carried_by_its_name() -> None:
    """tz=ZoneInfo(...) equals tz='<its name>' and survives to_dict."""
    c = crontab(minute=0, tz=BERLIN)
    assert c == crontab(minute=0, tz="Europe/Berlin")
    assert c.to_dict()["tz"] == "Europe/Berlin"


def test_repr_and_equality_follow_celery() -> None:
    """Celery's repr layout (m/h/dM/MY/d); equal when the expanded fields are equal."""
    c = crontab(minute="*/15", hour=7, day_of_week="mon-fri")
    assert repr(c) == "<crontab: */15 7 * * mon-fri (m/h/dM/MY/d)>"
    assert c == crontab(minute=[0, 15, 30, 45], hour="7", day_of_week="1-5")
    assert c != crontab(minute="*/15", hour=8, day_of_week="mon-fri")
    assert c != crontab(minute="*/15", hour=7, day_of_week="mon-fri", tz="Europe/Berlin")
