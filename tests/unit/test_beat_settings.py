"""Beat settings: beat_schedule checked on assignment, beat_max_loop_interval, timezone,
and the Celery beat settings celeriac refuses."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import msgpack
import pytest

from celeriac import App
from celeriac._beat import entry_from_dict, entry_to_dict
from celeriac._conf import Settings, UnsupportedSettingError
from celeriac.exceptions import ImproperlyConfigured, UnknownSettingError
from celeriac.schedules import crontab, schedule, solar

SEED = {
    "monday": {
        "task": "tasks.add",
        "schedule": crontab(hour=7, minute=30, day_of_week=1),
        "args": (16, 16),
    }
}


def test_the_seed_schedule_is_accepted_and_normalised() -> None:
    """DESIGN.md's entry is stored with defaults filled in (kwargs, options, relative)."""
    app = App("t")
    app.conf.beat_schedule = SEED
    assert app.conf.beat_schedule == {
        "monday": {
            "task": "tasks.add",
            "schedule": crontab(hour=7, minute=30, day_of_week=1),
            "args": (16, 16),
            "kwargs": {},
            "options": {},
            "relative": False,
        }
    }


def test_numbers_and_timedeltas_become_interval_schedules() -> None:
    """Seconds and timedeltas are Celery's shorthand for schedule(run_every, relative)."""
    conf = Settings(
        {
            "beat_schedule": {
                "a": {"task": "t.a", "schedule": 30.0},
                "b": {"task": "t.b", "schedule": dt.timedelta(hours=1), "relative": True},
            }
        }
    )
    assert conf.beat_schedule["a"]["schedule"] == schedule(30)
    assert conf.beat_schedule["b"]["schedule"] == schedule(3600, relative=True)


def test_the_default_is_an_empty_schedule_and_a_300_second_loop() -> None:
    """No periodic tasks by default; beat looks at the schedule at least every 300 s."""
    conf = Settings()
    assert conf.beat_schedule == {}
    assert conf.beat_max_loop_interval == 300.0


def _entry(**changes: Any) -> dict[str, Any]:
    return {"e": {"task": "t.a", "schedule": 10, **changes}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"e": {"task": "t.a", "schedul": 10}}, "unknown key 'schedul'; did you mean 'schedule'?"),
        (_entry(kwarg={}), "unknown key 'kwarg'; did you mean 'kwargs'?"),
        ({"e": {"schedule": 10}}, "entry 'e' has no 'task'"),
        ({"e": {"task": "t.a"}}, "entry 'e' has no 'schedule'"),
        (_entry(task=""), "'task' must be a task name"),
        (_entry(schedule="*/5 * * * *"), "'schedule' must be a schedule (crontab"),
        (_entry(schedule=0), "run_every must be more than 0 seconds"),
        (_entry(args=5), "'args' must be a list or tuple"),
        (_entry(kwargs={1: 2}), "'kwargs' must be a dict with string keys"),
        (_entry(relative="yes"), "'relative' must be True or False"),
        (_entry(options={"queu": "q"}), "unknown option 'queu'; did you mean 'queue'?"),
        (_entry(options={"priority": 300}), "option 'priority' must be an integer 0-255"),
        (_entry(options={"expires": "soon"}), "option 'expires' must be seconds or a datetime"),
        (_entry(options={"task_id": "x"}), "beat derives each firing's task id"),
        (_entry(options={"eta": 5}), "use countdown"),
        ({"e": [("task", "t.a")]}, "entry 'e' must be a dict"),
        ([("e", {})], "must be a dict of entries"),
    ],
)
def test_bad_entries_are_refused_on_assignment(value: Any, message: str) -> None:
    """Every mistake is an ImproperlyConfigured naming the entry and what is wrong."""
    app = App("t")
    with pytest.raises(ImproperlyConfigured) as caught:
        app.conf.beat_schedule = value
    assert message in str(caught.value)
    assert app.conf.beat_schedule == {}


def test_every_apply_async_option_is_accepted() -> None:
    """queue, routing_key, exchange, priority, expires, countdown... pass through unchanged."""
    options = {
        "queue": "q",
        "routing_key": "r.k",
        "exchange": "x",
        "priority": 5,
        "expires": 60,
        "countdown": 1.5,
        "serializer": "msgpack",
        "ignore_result": True,
        "headers": {"h": 1},
        "time_limit": 30,
        "soft_time_limit": 20,
    }
    conf = Settings({"beat_schedule": _entry(options=options)})
    assert conf.beat_schedule["e"]["options"] == options


@pytest.mark.parametrize("kind", ["crontab", "schedule", "solar"])
def test_entries_survive_json_and_msgpack_as_plain_dicts(kind: str) -> None:
    """entry_to_dict gives plain data; entry_from_dict rebuilds an equal checked entry."""
    sched = {"crontab": crontab("*/5", tz="Europe/Berlin"), "schedule": schedule(9)}.get(
        kind, solar("sunset", 52.5, 13.4)
    )
    entry = Settings({"beat_schedule": _entry(schedule=sched, args=[1], kwargs={"k": "v"})})
    checked = entry.beat_schedule["e"]
    for codec in (json, msgpack):
        plain = codec.loads(codec.dumps(entry_to_dict(checked)))  # type: ignore[attr-defined]
        assert entry_from_dict(plain) == checked


@pytest.mark.parametrize("name", ["beat_scheduler", "beat_schedule_filename", "beat_sync_every"])
def test_beat_state_settings_are_refused_with_the_reason(name: str) -> None:
    """Celery's scheduler class, state file and sync interval: state lives at the hub."""
    with pytest.raises(UnsupportedSettingError, match="durably at the hub"):
        Settings({name: "x"})


def test_old_celerybeat_names_point_to_the_new_ones() -> None:
    """CELERYBEAT_SCHEDULE names beat_schedule; CELERYBEAT_SCHEDULER says it is unsupported."""
    with pytest.raises(UnknownSettingError, match="use 'beat_schedule'"):
        Settings({"CELERYBEAT_SCHEDULE": {}})
    with pytest.raises(UnsupportedSettingError, match="durably at the hub"):
        Settings({"CELERYBEAT_SCHEDULER": "x"})


def test_environment_sets_the_loop_interval_but_not_the_schedule() -> None:
    """CELERIAC_BEAT_MAX_LOOP_INTERVAL=5m reads as 300 s; a schedule cannot come from env."""
    assert Settings(environ={"CELERIAC_BEAT_MAX_LOOP_INTERVAL": "5m"}).beat_max_loop_interval == 300
    with pytest.raises(ImproperlyConfigured, match="set it in code"):
        _ = Settings(environ={"CELERIAC_BEAT_SCHEDULE": "{}"}).beat_schedule
    with pytest.raises(ImproperlyConfigured, match="greater than 0"):
        Settings({"beat_max_loop_interval": 0})


def test_timezone_must_be_a_known_zone() -> None:
    """A misspelt timezone fails on assignment with the closest name."""
    conf = Settings({"timezone": "America/New_York"})
    assert conf.timezone == "America/New_York"
    with pytest.raises(ImproperlyConfigured, match="did you mean 'America/New_York'"):
        conf.timezone = "America/NewYork"
