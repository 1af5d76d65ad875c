"""Beat's pure core: which entries fire now, under which task id, and when to look again.

The beat runtime (a timer actor, with the hub holding the lease and the last-run state) is
meant to be a thin loop around :func:`plan`::

    result = plan(entries, state, now, max_interval=conf.beat_max_loop_interval)
    publish each result.ticks[i] with task_id=tick.task_id, store result.state at the hub,
    sleep until result.wake_at (or until the schedule changes)

How it decides, per entry (``state[name]`` is the entry's last run, an aware datetime):

- **new entry** (no state): it is anchored at ``now`` and nothing fires; its first firing is
  the schedule's first slot after ``now`` (Celery starts a new entry the same way);
- **on time**: the first slot after the last run (``schedule.next_run(last)``) is due; it fires
  and the new state is that *slot*, so intervals do not drift with beat's latency;
- **catch-up**: when more than one slot passed since the last run (no beat ran for a while),
  one late firing is sent, for the first missed slot, and the state becomes ``now``: the next
  firing is the schedule's first slot after ``now`` (Celery's policy: one late run, no burst);
- **cron starting deadline** (``beat_cron_starting_deadline``, crontab entries only): a missed
  slot older than that many seconds is not run late; beat looks back no further than
  ``now - deadline`` for the slot to fire (Celery's rule). None: no limit.

Each tick's **task id** is derived from the entry's name and its slot (:func:`slot_task_id`),
so two beats that compute the same tick, or a beat that restarts before its new state was
stored, send the same id, and the hub drops the duplicate. ``plan`` reads no clock and keeps
no state: the same arguments give the same result.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .schedules import crontab

__all__ = ["BEAT_NAMESPACE", "Plan", "Tick", "plan", "slot_task_id"]

BEAT_NAMESPACE: Final = uuid.UUID("6c1f3b1e-2d0b-5b9a-9f3e-8e0c7a1b2c3d")
"""The uuid5 namespace of beat task ids (fixed: ids must agree across processes and releases)."""


@dataclass(frozen=True)
class Tick:
    """One firing to publish: the entry, the slot it stands for, and its derived task id."""

    entry: str
    task: str
    slot: dt.datetime
    task_id: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What :func:`plan` decided: the ticks to send, the state to store, when to look again."""

    ticks: list[Tick]
    state: dict[str, dt.datetime]
    wake_at: dt.datetime


def slot_task_id(entry: str, slot: dt.datetime) -> str:
    """The task id of ``entry``'s firing for ``slot`` (the same in every process)."""
    return str(uuid.uuid5(BEAT_NAMESPACE, f"{entry}\x00{slot.astimezone(dt.UTC).isoformat()}"))


def plan(
    entries: Mapping[str, Mapping[str, Any]],
    state: Mapping[str, dt.datetime],
    now: dt.datetime,
    *,
    max_interval: float,
    cron_starting_deadline: float | None = None,
) -> Plan:
    """Decide what fires at ``now`` for checked ``beat_schedule`` entries and their state.

    State of entries no longer in ``entries`` is dropped. ``wake_at`` is the earliest next
    slot, but never later than ``max_interval`` seconds after ``now``.
    """
    ticks: list[Tick] = []
    new_state: dict[str, dt.datetime] = {}
    wake_at = now + dt.timedelta(seconds=max_interval)
    for name in sorted(entries):
        entry = entries[name]
        tick, new_state[name] = _decide(name, entry, state.get(name), now, cron_starting_deadline)
        if tick is not None:
            ticks.append(tick)
        wake_at = min(wake_at, entry["schedule"].next_run(new_state[name]))
    return Plan(ticks=ticks, state=new_state, wake_at=wake_at)


def _decide(
    name: str,
    entry: Mapping[str, Any],
    last: dt.datetime | None,
    now: dt.datetime,
    cron_deadline: float | None = None,
) -> tuple[Tick | None, dt.datetime]:
    if last is None:
        return None, now
    schedule = entry["schedule"]
    since = last
    if cron_deadline is not None and isinstance(schedule, crontab):
        # No looking back further; a slot exactly at now - deadline still counts (Celery's).
        since = max(last, now - dt.timedelta(seconds=cron_deadline, microseconds=1))
    slot = schedule.next_run(since)
    if slot > now:  # not due; past the deadline, the missed slots are forgotten (anchor: now)
        return None, last if since is last else now
    tick = Tick(
        entry=name,
        task=entry["task"],
        slot=slot,
        task_id=slot_task_id(name, slot),
        args=tuple(entry.get("args", ())),
        kwargs=dict(entry.get("kwargs", {})),
        options=dict(entry.get("options", {})),
    )
    caught_up = schedule.next_run(slot) > now
    return tick, slot if caught_up else now
