"""Autoscaling of the prefork pool (``--autoscale MAX,MIN``, Celery's flag) and its resizing.

How it works
------------
The node starts MIN children and has room for MAX (slot indices ``0 .. MAX-1``; a slot is
*wanted* or not, and only wanted slots are started and replaced). Growing: when every wanted
child has been busy without a break (a gap under :data:`AUTOSCALE_BUSY_GAP` between two tasks
does not count) for ``worker_autoscale_grow_after`` seconds, one more slot is wanted and its
child started (``autoscale_grow``); the next growth needs that child busy too. Shrinking: a
wanted child idle for ``worker_autoscale_keepalive`` seconds is no longer wanted
(``autoscale_shrink``) and told to stop, as in a warm shutdown; never below MIN. Remote control
resizes the pool (:func:`resize`) and changes the bounds (:func:`make_room`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Final

from celeriac._log import get_logger

from .prefork_slots import Slot

__all__ = ["AUTOSCALE_BUSY_GAP", "Autoscaler", "make_room", "resize"]

_log = get_logger("celeriac.prefork")

#: Autoscaling: a child idle less than this between two tasks still counts as busy (the parent
#: may read its "finished" a moment before the next "started").
AUTOSCALE_BUSY_GAP: Final = 0.25


class Autoscaler:
    """When to grow and shrink the pool; ``forget(index)`` clears a slot's restart history."""

    def __init__(self, keepalive: float, grow_after: float, forget: Callable[[int], None]) -> None:
        self.keepalive = keepalive
        self.grow_after = grow_after
        self.forget = forget
        #: Since when every wanted child has been busy (None: not all busy).
        self.all_busy_since: float | None = None

    def step(self, slots: list[Slot], bounds: tuple[int, int], now: float) -> None:
        """Grow by one child after a while with all busy; let children idle too long go."""
        high, low = bounds
        wanted = [s for s in slots if s.wanted]
        all_busy = all(
            s.process is not None
            and s.ready
            and not (s.leaving or s.killed)
            and (
                s.task is not None
                or (s.idle_since is not None and now - s.idle_since < AUTOSCALE_BUSY_GAP)
            )
            for s in wanted
        )
        if not all_busy:
            self.all_busy_since = None
        elif self.all_busy_since is None:
            self.all_busy_since = now
        elif now - self.all_busy_since >= self.grow_after and len(wanted) < high:
            free = next((s for s in slots if not s.wanted and s.process is None), None)
            if free is not None:  # else: the free room is a child still leaving
                busy_for = now - self.all_busy_since
                self.all_busy_since = None
                free.wanted, free.due, free.died_at = True, now, None
                self.forget(free.index)
                _log.info(
                    "autoscale_grow",
                    child=free.index,
                    procs=len(wanted) + 1,
                    was=len(wanted),
                    min=low,
                    max=high,
                    busy_for=round(busy_for, 3),
                )
        idle = sorted(
            (
                s
                for s in wanted
                if s.process is not None
                and s.ready
                and s.task is None
                and not (s.leaving or s.killed)
                and s.idle_since is not None
                and now - s.idle_since >= self.keepalive
            ),
            key=lambda s: (s.idle_since, -s.index),
        )
        count = len(wanted)
        for slot in idle:
            if count <= low:
                break
            count -= 1
            assert slot.idle_since is not None
            idle_for = now - slot.idle_since
            slot.wanted, slot.due = False, None
            slot.leaving = f"autoscale: idle for {idle_for:.1f} s (keepalive {self.keepalive:g} s)"
            _log.info(
                "autoscale_shrink",
                child=slot.index,
                pid=slot.pid,
                procs=count,
                was=count + 1,
                min=low,
                max=high,
                idle_for=round(idle_for, 3),
            )
            if slot.conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    slot.conn.send(("stop",))


def resize(slots: list[Slot], grow: int, now: float) -> None:
    """``pool_grow``/``pool_shrink``: want ``grow`` more children (fewer if negative, never
    under one); new ones start at once, idle ones leave as in a warm shutdown."""
    for _ in range(max(0, grow)):
        slot = next((s for s in slots if not s.wanted and s.process is None), None)
        if slot is None:
            slot = Slot(len(slots), wanted=False)
            slots.append(slot)
        slot.wanted, slot.due, slot.died_at = True, now, None
    for _ in range(max(0, -grow)):
        wanted = [s for s in slots if s.wanted]
        if len(wanted) <= 1:
            break
        slot = min(wanted, key=lambda s: (s.task is not None, -s.index))
        slot.wanted, slot.due = False, None
        slot.leaving = "pool_shrink (remote control)"
        if slot.conn is not None:
            with contextlib.suppress(OSError, ValueError):
                slot.conn.send(("stop",))


def make_room(slots: list[Slot], high: int, low: int) -> None:
    """New autoscale bounds (MAX >= MIN >= 1): room is made for MAX children."""
    if not 1 <= low <= high:
        raise ValueError(f"autoscale needs MAX >= MIN >= 1, got {high},{low}")
    while len(slots) < high:
        slots.append(Slot(len(slots), wanted=False))
