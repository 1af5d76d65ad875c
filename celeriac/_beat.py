"""The ``beat_schedule`` setting: entries checked on assignment and turned into plain dicts.

An entry is Celery's dict: ``task`` (a task name, required), ``schedule`` (required: a
schedule object, seconds, or a timedelta), ``args``, ``kwargs``, ``options`` (what
``apply_async`` takes: queue, routing_key, exchange, priority, expires, countdown, ...) and
``relative`` (for a number or timedelta schedule). :func:`check_beat_schedule` is the setting's
check: it refuses unknown keys with a "did you mean", and stores each entry normalised (its
schedule a schedule object, ``args`` a tuple, ``kwargs`` and ``options`` dicts). Entries
travel as plain dicts (:func:`entry_to_dict`, :func:`entry_from_dict`), so the beat runtime
can keep them at the hub.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from celeriac._cron import ScheduleError
from celeriac.exceptions import ImproperlyConfigured
from celeriac.schedules import BaseSchedule, maybe_schedule, schedule_from_dict

__all__ = ["ENTRY_KEYS", "OPTION_KEYS", "check_beat_schedule", "entry_from_dict", "entry_to_dict"]

ENTRY_KEYS: Final = ("task", "schedule", "args", "kwargs", "options", "relative")


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _is_seconds(v: Any) -> bool:
    return isinstance(v, int | float | dt.timedelta) and not isinstance(v, bool)


def _is_time(v: Any) -> bool:
    return _is_seconds(v) or isinstance(v, dt.datetime)


def _is_priority(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255


OPTION_KEYS: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "queue": (_is_text, "a queue name"),
    "exchange": (_is_text, "an exchange name"),
    "routing_key": (lambda v: isinstance(v, str), "a string"),
    "priority": (_is_priority, "an integer 0-255"),
    "countdown": (_is_seconds, "seconds"),
    "expires": (_is_time, "seconds or a datetime"),
    "serializer": (_is_text, "a serializer name"),
    "ignore_result": (lambda v: isinstance(v, bool), "True or False"),
    "headers": (lambda v: isinstance(v, Mapping), "a dict"),
    "time_limit": (_is_seconds, "seconds"),
    "soft_time_limit": (_is_seconds, "seconds"),
}
"""The ``options`` an entry may carry (``apply_async``'s), with a test and what it expects."""

_SET_BY_BEAT: Final = {
    "task_id": "beat derives each firing's task id from the entry and its slot",
    "eta": "beat sends each firing when it is due; use countdown to delay it",
}


def check_beat_schedule(value: Any) -> dict[str, dict[str, Any]]:
    """The check of ``beat_schedule``: ``{name: entry}`` with every entry normalised."""
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"setting 'beat_schedule' must be a dict of entries, got {type(value).__name__}"
        )
    return {_entry_name(name): _check_entry(name, entry) for name, entry in value.items()}


def _entry_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ImproperlyConfigured(f"beat_schedule entry names are non-empty strings, got {name!r}")
    return name


def _check_entry(name: str, entry: Any) -> dict[str, Any]:
    where = f"beat_schedule entry {name!r}"
    if not isinstance(entry, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict, got {type(entry).__name__}")
    _refuse_unknown(where, entry, ENTRY_KEYS, "key")
    for required in ("task", "schedule"):
        if required not in entry:
            raise ImproperlyConfigured(f"{where} has no {required!r}")
    if not _is_text(entry["task"]):
        raise ImproperlyConfigured(f"{where}: 'task' must be a task name, got {entry['task']!r}")
    relative = entry.get("relative", False)
    if not isinstance(relative, bool):
        raise ImproperlyConfigured(f"{where}: 'relative' must be True or False, got {relative!r}")
    return {
        "task": entry["task"],
        "schedule": _check_schedule(where, entry["schedule"], relative),
        "args": _check_args(where, entry.get("args", ())),
        "kwargs": _check_kwargs(where, entry.get("kwargs", {})),
        "options": _check_options(where, entry.get("options", {})),
        "relative": relative,
    }


def _refuse_unknown(
    where: str, given: Mapping[Any, Any], known: Collection[str], what: str
) -> None:
    for key in given:
        if key in known:
            continue
        if key in _SET_BY_BEAT and what == "option":
            raise ImproperlyConfigured(
                f"{where}: option {key!r} is not allowed: {_SET_BY_BEAT[key]}"
            )
        import difflib  # noqa: PLC0415 - only when a suggestion is made (start-up time)

        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
        raise ImproperlyConfigured(f"{where}: unknown {what} {key!r}{hint}")


def _check_schedule(where: str, value: Any, relative: bool) -> BaseSchedule:
    if isinstance(value, bool) or not isinstance(value, BaseSchedule | int | float | dt.timedelta):
        raise ImproperlyConfigured(
            f"{where}: 'schedule' must be a schedule (crontab, schedule, solar), seconds or a "
            f"timedelta, got {value!r}"
        )
    try:
        result = maybe_schedule(value, relative)
    except ScheduleError as exc:
        raise ImproperlyConfigured(f"{where}: {exc}") from exc
    assert result is not None  # value is not None here
    return result


def _check_args(where: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, list | tuple):
        return tuple(value)
    raise ImproperlyConfigured(f"{where}: 'args' must be a list or tuple, got {value!r}")


def _check_kwargs(where: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return dict(value)
    raise ImproperlyConfigured(f"{where}: 'kwargs' must be a dict with string keys, got {value!r}")


def _check_options(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"{where}: 'options' must be a dict, got {value!r}")
    _refuse_unknown(where, value, OPTION_KEYS, "option")
    for key, option in value.items():
        test, expected = OPTION_KEYS[key]
        if option is not None and not test(option):
            raise ImproperlyConfigured(
                f"{where}: option {key!r} must be {expected}, got {option!r}"
            )
    return dict(value)


def entry_to_dict(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A checked entry as plain data: its schedule as ``to_dict()``, ``args`` as a list.

    ``args``, ``kwargs`` and ``options`` are carried as given: they must be encodable by the
    serializer that carries the dict (json or msgpack for the hub).
    """
    plain = dict(entry)
    plain["schedule"] = entry["schedule"].to_dict()
    plain["args"] = list(entry["args"])
    return plain


def entry_from_dict(data: Mapping[str, Any], name: str = "(from dict)") -> dict[str, Any]:
    """The checked entry that :func:`entry_to_dict` described (``name`` is for errors)."""
    entry = dict(data)
    entry["schedule"] = schedule_from_dict(dict(data["schedule"]))
    return _check_entry(name, entry)
