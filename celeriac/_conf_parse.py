"""Settings' parsers (environment strings -> values) and checks (Python values -> stored values).

A declaration (:func:`celeriac._conf.declare`) names one of each; without them it infers both
from the default's type (:func:`infer_parse`, :func:`infer_check`).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "choice_check",
    "infer_check",
    "infer_parse",
    "int_check",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_list",
    "parse_optional",
    "parse_seconds",
    "seconds_check",
    "str_list_check",
    "to_seconds",
]

# -- parsers (environment strings -> values) ---------------------------------------------------

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
_NONE: Final = frozenset({"", "none", "null"})
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` -> True, ``0/false/no/off`` -> False (any case); anything else fails."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ImproperlyConfigured(f"expected one of 1/true/yes/on/0/false/no/off, got {text!r}")


def parse_int(text: str) -> int:
    """A decimal integer."""
    try:
        return int(text.strip())
    except ValueError:
        raise ImproperlyConfigured(f"expected an integer, got {text!r}") from None


def parse_float(text: str) -> float:
    """A decimal number."""
    try:
        return float(text.strip())
    except ValueError:
        raise ImproperlyConfigured(f"expected a number, got {text!r}") from None


def parse_list(text: str) -> list[str]:
    """A comma-separated list; items are stripped and empty items dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_seconds(text: str) -> float:
    """Seconds: ``"30"``, ``"1.5"``, or with a unit: ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"``."""
    word = text.strip().lower()
    factor = _UNITS.get(word[-1:], 0.0)
    number = word[:-1] if factor else word
    try:
        return float(number) * (factor or 1.0)
    except ValueError:
        raise ImproperlyConfigured(
            f"expected seconds such as 30, 1.5 or 5m, got {text!r}"
        ) from None


def parse_optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap ``parse`` so that ``""``, ``"none"`` and ``"null"`` read as None."""

    def parse_or_none(text: str) -> Any:
        return None if text.strip().lower() in _NONE else parse(text)

    return parse_or_none


# -- checks (Python values -> stored values) ---------------------------------------------------


def _type_name(value: object) -> str:
    return type(value).__name__


def to_seconds(value: Any) -> float:
    """A number of seconds or a ``datetime.timedelta`` as float seconds (bools refused)."""
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ImproperlyConfigured(f"expected seconds or a timedelta, got {_type_name(value)}")
    return float(value)


def seconds_check(
    name: str, *, optional: bool = False, positive: bool = False
) -> Callable[[Any], float | None]:
    """A check for a duration in seconds (timedelta accepted); None allowed when ``optional``."""

    def check(value: Any) -> float | None:
        if value is None and optional:
            return None
        try:
            seconds = to_seconds(value)
        except ImproperlyConfigured as exc:
            raise ImproperlyConfigured(f"setting {name!r}: {exc}") from None
        if math.isnan(seconds) or seconds < 0 or (positive and seconds == 0):
            bound = "greater than 0" if positive else "0 or more"
            raise ImproperlyConfigured(f"setting {name!r} must be {bound} seconds, got {value!r}")
        return seconds

    return check


def int_check(
    name: str, *, minimum: int | None = None, optional: bool = False
) -> Callable[[Any], int | None]:
    """A check for an integer (not a bool) of at least ``minimum``; None too when ``optional``."""

    def check(value: Any) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ImproperlyConfigured(f"setting {name!r} must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise ImproperlyConfigured(f"setting {name!r} must be {minimum} or more, got {value}")
        return value

    return check


def choice_check(name: str, choices: Callable[[], Iterable[str]]) -> Callable[[Any], str]:
    """A check for one of ``choices()`` (a callable, so the allowed set can grow later)."""

    def check(value: Any) -> str:
        allowed = tuple(choices())
        if isinstance(value, str) and value.strip().lower() in allowed:
            return value.strip().lower()
        raise ImproperlyConfigured(
            f"setting {name!r} must be one of {', '.join(allowed)}; got {value!r}"
        )

    return check


def str_list_check(name: str, *, optional: bool = False) -> Callable[[Any], list[str] | None]:
    """A check for a list of strings: a list, tuple or set, or a comma-separated string."""

    def check(value: Any) -> list[str] | None:
        if value is None and optional:
            return None
        if isinstance(value, str):
            return parse_list(value)
        if isinstance(value, list | tuple | set | frozenset) and all(
            isinstance(item, str) for item in value
        ):
            return list(value)
        raise ImproperlyConfigured(f"setting {name!r} must be a list of strings, got {value!r}")

    return check


def _exact_type_check(name: str, kind: type) -> Callable[[Any], Any]:
    """The check inferred from a bool, int, float or str default."""

    def check(value: Any) -> Any:
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        raise ImproperlyConfigured(
            f"setting {name!r} must be of type {kind.__name__}, got {value!r} ({_type_name(value)})"
        )

    return check


def infer_parse(default: Any) -> Callable[[str], Any]:
    """The environment parser a declaration without ``parse`` gets, from its default's type."""
    if isinstance(default, bool):
        return parse_bool
    if isinstance(default, int):
        return parse_int
    if isinstance(default, float):
        return parse_float
    if isinstance(default, tuple):
        return lambda text: tuple(parse_list(text))
    if isinstance(default, list):
        return parse_list
    return str


def infer_check(name: str, default: Any) -> Callable[[Any], Any] | None:
    """The check a declaration without ``check`` gets, from its default's type (or None)."""
    for kind in (bool, int, float, str):
        if type(default) is kind:
            return _exact_type_check(name, kind)
    if isinstance(default, list | tuple):
        to_list = str_list_check(name)
        return to_list if isinstance(default, list) else lambda v: tuple(to_list(v) or ())
    return None
