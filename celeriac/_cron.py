"""Crontab fields: Celery's parser and the pure wall-clock search behind :class:`crontab`.

Everything here works on *wall-clock* (naive) datetimes; time zones and DST live in
:mod:`celeriac._zones`. A :class:`CronSpec` holds the five expanded fields as sets of integers
and answers one question, :meth:`CronSpec.next_wall`: the first wall-clock minute at or after a
given one that matches. A day matches when its month, day of month *and* day of week are all in
their sets (Celery's rule; classic cron ORs day of month and day of week when both are
restricted, Celery does not).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured

__all__ = ["CronSpec", "ParseException", "ScheduleError", "ScheduleTypeError", "crontab_parser"]


class ScheduleError(ImproperlyConfigured, ValueError):
    """A schedule that cannot work as given (a bad crontab field, solar event, interval...)."""


class ScheduleTypeError(ScheduleError, TypeError):
    """A schedule argument of a type that is not accepted (Celery raises TypeError here)."""


class ParseException(ScheduleError):
    """A crontab field that cannot be parsed or is out of range (Celery's name)."""


WEEKDAYS: Final = {
    name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
MONTHS: Final = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}

_RANGE_STEPS: Final = re.compile(r"^(\w+?)-(\w+)/(\w+)?$")
_RANGE: Final = re.compile(r"^(\w+?)-(\w+)$")
_STAR_STEPS: Final = re.compile(r"^\*/(\w+)?$")


class crontab_parser:  # noqa: N801 - Celery's class name
    """Parse one crontab field (``'*/15'``, ``'1-5'``, ``'0-30/10'``, ``'1,3,5'``, ``'mon-fri'``).

    ``crontab_parser(60).parse('*/15') == {0, 15, 30, 45}``; ``max_`` is the number of values
    and ``min_`` the first one (``crontab_parser(31, 1)`` for days of month). Names are
    accepted for days of the week (``sun`` = 0 ... ``sat`` = 6, Celery's; any word starting with
    them, such as ``monday``) and for months (``jan`` = 1 ... ``dec`` = 12, an extension of
    Celery's syntax). A range whose end is below its start wraps around (``fri-mon``).
    """

    ParseException = ParseException

    def __init__(self, max_: int = 60, min_: int = 0) -> None:
        self.max_ = max_
        self.min_ = min_

    def parse(self, spec: str) -> set[int]:
        """The set of values ``spec`` stands for; :class:`ParseException` when it is invalid."""
        values: set[int] = set()
        for part in spec.split(","):
            part = part.strip()  # noqa: PLW2901 - the stripped part is the part
            if not part:
                raise ParseException(f"empty part in crontab field {spec!r}")
            values.update(self._parse_part(part))
        return values

    def _parse_part(self, part: str) -> list[int]:
        if part == "*":
            return self._all()
        if match := _STAR_STEPS.match(part):
            return self._all()[:: self._step(match.group(1), part)]
        if match := _RANGE_STEPS.match(part):
            low, high, step = match.groups()
            return self._range(low, high)[:: self._step(step, part)]
        if match := _RANGE.match(part):
            return self._range(*match.groups())
        return [self._number(part)]

    def _all(self) -> list[int]:
        return list(range(self.min_, self.min_ + self.max_))

    def _range(self, low: str, high: str) -> list[int]:
        start, end = self._number(low), self._number(high)
        if end < start:  # wrap around, as Celery does: 'fri-mon', '22-2'
            return [*range(start, self.min_ + self.max_), *range(self.min_, end + 1)]
        return list(range(start, end + 1))

    @staticmethod
    def _step(text: str | None, part: str) -> int:
        if not text:
            raise ParseException(f"empty step in crontab field {part!r}")
        if not text.isdigit() or int(text) == 0:
            raise ParseException(f"invalid step {text!r} in crontab field {part!r}")
        return int(text)

    def _number(self, text: str) -> int:
        if text.startswith("-"):
            raise ParseException(f"negative numbers are not supported: {text!r}")
        value = int(text) if text.isdigit() else self._name(text)
        highest = self.min_ + self.max_ - 1
        if value > highest:
            raise ParseException(f"Invalid end range: {value} > {highest}.")
        if value < self.min_:
            raise ParseException(f"Invalid beginning range: {value} < {self.min_}.")
        return value

    def _name(self, text: str) -> int:
        names = MONTHS if self.min_ == 1 and self.max_ == 12 else WEEKDAYS
        value = names.get(text[:3].lower()) if len(text) >= 3 else None
        if value is None or not text.isalpha():
            kind = "month" if names is MONTHS else "weekday"
            raise ParseException(f"Invalid {kind} literal {text!r}.")
        return value


def expand(spec: Any, max_: int, min_: int = 0) -> frozenset[int]:
    """One crontab field (int, str, or an iterable of ints) as the set of values it allows."""
    if isinstance(spec, bool):
        raise ScheduleTypeError(_type_message(spec))
    if isinstance(spec, int):
        values: set[int] = {spec}
    elif isinstance(spec, str):
        values = crontab_parser(max_, min_).parse(spec)
    elif isinstance(spec, Iterable):
        values = set(spec)
    else:
        raise ScheduleTypeError(_type_message(spec))
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScheduleTypeError(_type_message(value))
        if not min_ <= value < min_ + max_:
            raise ParseException(
                f"Invalid crontab pattern.  Valid range is {min_}-{max_ - 1 + min_}. "
                f"'{value}' was found."
            )
    if not values:
        raise ParseException("a crontab field must allow at least one value")
    return frozenset(values)


def _type_message(value: object) -> str:
    return (
        "Argument cronspec needs to be of any of the following types: int, str, or an "
        f"iterable type. {type(value)!r} was given."
    )


_ONE_DAY: Final = dt.timedelta(days=1)
_CYCLE_DAYS: Final = 146_097  # the Gregorian calendar repeats (weekdays included) every 400 years


def _sorted(values: frozenset[int]) -> tuple[int, ...]:
    return tuple(sorted(values))


@dataclass(frozen=True)
class CronSpec:
    """The five expanded crontab fields; Sunday is 0 in ``day_of_week``."""

    minute: frozenset[int]
    hour: frozenset[int]
    day_of_week: frozenset[int]
    day_of_month: frozenset[int]
    month_of_year: frozenset[int]
    _minutes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _hours: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_minutes", _sorted(self.minute))
        object.__setattr__(self, "_hours", _sorted(self.hour))
        if not any(day <= _longest(m) for m in self.month_of_year for day in self.day_of_month):
            raise ParseException(
                f"this crontab never fires: no month in {sorted(self.month_of_year)} has a day "
                f"in {sorted(self.day_of_month)}"
            )

    @property
    def every_hour(self) -> bool:
        """Runs in every hour of the day: such a job follows the clock through DST changes."""
        return len(self.hour) == 24

    def day_matches(self, day: dt.date) -> bool:
        """Month, day of month and day of week all match (Celery's AND rule)."""
        return (
            day.month in self.month_of_year
            and day.day in self.day_of_month
            and day.isoweekday() % 7 in self.day_of_week
        )

    def next_wall(self, start: dt.datetime) -> dt.datetime:
        """The first matching wall-clock minute at or after ``start`` (naive, minute-aligned)."""
        day, earliest = start.date(), (start.hour, start.minute)
        for _ in range(_CYCLE_DAYS + 1):
            if self.day_matches(day):
                found = self._first_time(earliest)
                if found is not None:
                    return dt.datetime.combine(day, found)
            day, earliest = day + _ONE_DAY, (0, 0)
        raise ParseException("this crontab never fires")  # pragma: no cover - checked at init

    def _first_time(self, earliest: tuple[int, int]) -> dt.time | None:
        hour, minute = earliest
        for h in self._hours[bisect_left(self._hours, hour) :]:
            floor = minute if h == hour else 0
            index = bisect_left(self._minutes, floor)
            if index < len(self._minutes):
                return dt.time(h, self._minutes[index])
        return None


def _longest(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]
