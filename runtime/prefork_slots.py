"""The prefork parent's record of its child slots, and how it ends a child it must kill.

How it works
------------
Each :class:`Slot` holds a child process, its pipe, the task it said it runs
(:class:`Running`) and why it is leaving or being killed. A child is killed by the parent for
two reasons: its task ran past its hard time limit (:func:`enforce_time_limits` tells it
``expire``), or its task was revoked with ``terminate`` (the child says "terminating":
:func:`terminate`). Either way the child ends the task itself, through the executor and its
session like any outcome (:meth:`~celeriac.runtime.worker.WorkerNode.cut_short`: errbacks
called, a ``STAT`` after the outcome confirms the hub has it) and says "settled"; only then
does the parent signal it (:func:`kill`). A child that cannot say it within
:data:`SETTLE_GRACE` seconds is killed anyway (:func:`kill_overdue`); the hub then decides as
for any lost child. The parent never writes a task's outcome itself and never polls for one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Final

from celeriac._log import get_logger

__all__ = [
    "SETTLE_GRACE",
    "Running",
    "SendChild",
    "Slot",
    "enforce_time_limits",
    "kill",
    "kill_overdue",
    "kill_when_settled",
    "terminate",
]

_log = get_logger("celeriac.prefork")

#: How long a child that must be killed (hard time limit, terminate) has to report its task's
#: outcome to the hub and say "settled" before it is killed anyway (the hub then decides).
SETTLE_GRACE: Final = 5.0

#: Sends child ``index`` a message on its pipe; False if it cannot be told.
SendChild = Callable[[int, tuple[str, ...]], bool]


@dataclass(slots=True)
class Running:
    """The task a child said it runs (its hard limit computed in the child)."""

    id: str
    tag: str
    name: str
    hard_limit: float | None
    store: bool
    since: float


@dataclass(slots=True)
class Slot:
    """One child slot of the pool: its process, pipe, task and fate."""

    index: int
    process: BaseProcess | None = None
    conn: Connection | None = None
    pid: int | None = None
    ready: bool = False
    task: Running | None = None
    leaving: str | None = None  # a planned exit (recycling) and why
    killed: str | None = None  # the parent kills it (time limit, terminate) and why
    kill_at: float | None = None  # ... once the child's outcome is settled, or at this time
    kill_signal: int = signal.SIGKILL
    due: float | None = None  # a replacement is due at this monotonic time
    died_at: float | None = None
    last_pid: int | None = None
    tasks: int = 0
    wanted: bool = True  # autoscaling: whether the pool wants a child in this slot
    idle_since: float | None = None  # ready and running nothing since then (None: busy/not up)


def enforce_time_limits(slots: list[Slot], now: float, send_child: SendChild) -> None:
    """Tell each child whose task has run past its hard limit to end it (``expire``); it is
    killed once it has (see :func:`kill_when_settled`)."""
    for slot in slots:
        task = slot.task
        if task is None or task.hard_limit is None or slot.pid is None or slot.killed:
            continue
        if now - task.since <= task.hard_limit:
            continue
        _log.error(
            "time_limit_exceeded",
            child=slot.index,
            pid=slot.pid,
            task_id=task.id,
            task=task.name,
            limit=task.hard_limit,
        )
        reason = (
            f"task {task.name}[{task.id}] exceeded its hard time limit of "
            f"{task.hard_limit:g} s; its process (pid {slot.pid}) was killed"
        )
        killed = f"hard time limit of {task.hard_limit:g} s exceeded by {task.id}"
        kill_when_settled(slot, killed, signal.SIGKILL, now)
        if not send_child(slot.index, ("expire", task.id, reason)):
            kill(slot)  # it cannot end the task itself: the hub decides (on_lost)


def kill_when_settled(slot: Slot, why: str, signum: int, now: float) -> None:
    """Kill the child in ``slot`` with ``signum`` once it says the hub has its task's
    outcome ("settled"), or after :data:`SETTLE_GRACE` seconds if it cannot say it."""
    slot.killed, slot.kill_signal, slot.kill_at = why, signum, now + SETTLE_GRACE


def kill(slot: Slot) -> None:
    """Kill the child in ``slot`` now, if it is to be killed (once)."""
    if slot.kill_at is None or slot.pid is None:
        return
    slot.kill_at = None
    with contextlib.suppress(OSError):
        os.kill(slot.pid, slot.kill_signal)


def kill_overdue(slots: list[Slot], now: float) -> None:
    """Kill the children that did not say "settled" in time."""
    for slot in slots:
        if slot.kill_at is not None and now >= slot.kill_at:
            task_id = slot.task.id if slot.task else None
            _log.warning(
                "hub_did_not_confirm", child=slot.index, task_id=task_id, waited=SETTLE_GRACE
            )
            kill(slot)


def terminate(slot: Slot, task_id: str, signum: int) -> None:
    """Revoke with terminate (issue 8): the child ends the task REVOKED itself (errbacks
    and ``task_revoked`` included) and says "settled"; then it is signalled (SIGINT, which
    children ignore, is sent as SIGTERM) and replaced like any that died."""
    task = slot.task
    if task is None or task.id != task_id or slot.pid is None or slot.killed:
        return  # finished meanwhile, or already being killed
    sig = signal.SIGTERM if signum == signal.SIGINT else signum
    why = f"task {task_id} revoked with terminate (signal {sig})"
    kill_when_settled(slot, why, sig, time.monotonic())
    _log.info("task_terminated", child=slot.index, pid=slot.pid, task_id=task_id, signum=sig)
