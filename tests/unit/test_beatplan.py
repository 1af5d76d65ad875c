"""Beat's pure planner: new entries, on-time firings, one late catch-up firing, derived task ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac._beat import check_beat_schedule
from celeriac._beatplan import Plan, plan, slot_task_id
from celeriac.schedules import BaseSchedule, crontab, schedule

UTC = dt.UTC
T0 = dt.datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # a Monday
MONDAY = {"monday": {"task": "tasks.add", "schedule": crontab(hour=7, minute=30), "args": (16, 16)}}


def entries(sched: BaseSchedule, name: str = "e", **extra: Any) -> dict[str, dict[str, Any]]:
    """A checked beat_schedule with one entry."""
    return check_beat_schedule({name: {"task": "tasks.t", "schedule": sched, **extra}})


def test_a_new_entry_is_anchored_at_now_and_does_not_fire() -> None:
    """No state yet: nothing fires, the state is now, beat wakes at the first slot."""
    result = plan(check_beat_schedule(MONDAY), {}, T0, max_interval=3600)
    assert result == Plan(ticks=[], state={"monday": T0}, wake_at=T0 + dt.timedelta(minutes=30))


def test_a_due_slot_fires_once_with_its_derived_task_id() -> None:
    """07:30 is due at 07:30:02: one tick for that slot; the state becomes the slot."""
    slot = T0 + dt.timedelta(minutes=30)
    result = plan(
        check_beat_schedule(MONDAY),
        {"monday": T0},
        slot + dt.timedelta(seconds=2),
        max_interval=300,
    )
    (tick,) = result.ticks
    assert (tick.entry, tick.task, tick.slot, tick.args) == ("monday", "tasks.add", slot, (16, 16))
    assert tick.task_id == slot_task_id("monday", slot)
    assert result.state == {"monday": slot}
    assert result.wake_at == slot + dt.timedelta(seconds=2, minutes=5)  # max_interval caps it


def test_missed_slots_give_one_late_firing_for_the_first_of_them() -> None:
    """Three hours without beat on an every-15-minutes entry: one tick, then back on schedule."""
    e = entries(crontab(minute="*/15"))
    now = T0 + dt.timedelta(hours=3, minutes=5)
    result = plan(e, {"e": T0}, now, max_interval=3600)
    assert [t.slot for t in result.ticks] == [T0 + dt.timedelta(minutes=15)]
    assert result.state == {"e": now}
    assert result.wake_at == T0 + dt.timedelta(hours=3, minutes=15)


def test_intervals_do_not_drift_with_beats_latency() -> None:
    """Fired 0.4 s late, an interval's next slot is still counted from its slot."""
    e = entries(schedule(10))
    result = plan(e, {"e": T0}, T0 + dt.timedelta(seconds=10.4), max_interval=300)
    assert result.state == {"e": T0 + dt.timedelta(seconds=10)}
    assert result.wake_at == T0 + dt.timedelta(seconds=20)


def test_the_same_arguments_give_the_same_ticks() -> None:
    """A beat that restarts before storing its state sends the same task ids again."""
    e = entries(schedule(30), args=[1], options={"queue": "q"})
    first = plan(e, {"e": T0}, T0 + dt.timedelta(seconds=31), max_interval=300)
    again = plan(e, {"e": T0}, T0 + dt.timedelta(seconds=31), max_interval=300)
    assert first == again
    assert first.ticks[0].options == {"queue": "q"}


def test_state_of_removed_entries_is_dropped() -> None:
    """An entry no longer in beat_schedule loses its state."""
    result = plan(entries(schedule(60)), {"e": T0, "gone": T0}, T0, max_interval=300)
    assert set(result.state) == {"e"}


@pytest.mark.parametrize("name", ["a", "b"])
def test_task_ids_differ_by_entry_and_slot(name: str) -> None:
    """Two entries, or two slots of one entry, never share a task id."""
    later = T0 + dt.timedelta(minutes=1)
    assert slot_task_id(name, T0) != slot_task_id(name, later)
    assert slot_task_id(name, T0) != slot_task_id(name + "x", T0)
    assert slot_task_id(name, T0) == slot_task_id(
        name, T0.astimezone(dt.timezone(dt.timedelta(hours=2)))
    )


schedules = st.one_of(
    st.integers(1, 900).map(schedule),
    st.sampled_from([crontab(), crontab(minute="*/15"), crontab(minute=30, hour="*/2")]),
    st.sampled_from(["Europe/Berlin", "America/New_York"]).map(
        lambda z: crontab(minute=30, hour=2, tz=z)
    ),
)
steps = st.lists(st.one_of(st.floats(0.1, 600), st.floats(600, 3 * 86400)), min_size=1, max_size=40)


@pytest.mark.property
@given(
    sched=schedules, gaps=steps, start=st.sampled_from([T0, dt.datetime(2026, 10, 24, tzinfo=UTC)])
)
def test_a_beat_loop_fires_each_due_slot_once_and_never_a_future_one(
    sched: BaseSchedule, gaps: list[float], start: dt.datetime
) -> None:
    """Driven over any timeline: a tick exactly when a slot passed since the state, for the
    first such slot; never a repeated task id; wake_at always in the future."""
    e, state, now, seen = entries(sched), {}, start, set()
    for gap in [0.0, *gaps]:
        now += dt.timedelta(seconds=gap)
        result = plan(e, state, now, max_interval=300)
        if "e" in state:
            first_slot = sched.next_run(state["e"])
            assert [t.slot for t in result.ticks] == ([first_slot] if first_slot <= now else [])
        assert not {t.task_id for t in result.ticks} & seen
        seen |= {t.task_id for t in result.ticks}
        assert now < result.wake_at <= now + dt.timedelta(seconds=300)
        state = result.state


def test_cron_starting_deadline_skips_a_slot_missed_too_long_ago() -> None:
    """beat_cron_starting_deadline: a crontab slot missed by more than the deadline is not run
    late; one within it is; interval schedules are not affected; a slot exactly at the
    deadline still counts."""
    cron = check_beat_schedule(MONDAY)
    slot = T0 + dt.timedelta(minutes=30)
    late = slot + dt.timedelta(hours=2)  # beat was down from before 07:30 until 09:30
    assert plan(cron, {"monday": T0}, late, max_interval=300).ticks[0].slot == slot
    skipped = plan(cron, {"monday": T0}, late, max_interval=300, cron_starting_deadline=3600)
    assert skipped.ticks == []
    assert skipped.wake_at == late + dt.timedelta(seconds=300)
    within = plan(cron, {"monday": T0}, late, max_interval=300, cron_starting_deadline=7200)
    assert [t.slot for t in within.ticks] == [slot]
    every = entries(schedule(600))
    kept = plan(every, {"e": T0}, late, max_interval=300, cron_starting_deadline=60)
    assert [t.slot for t in kept.ticks] == [T0 + dt.timedelta(minutes=10)]
