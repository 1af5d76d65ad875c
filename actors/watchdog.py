"""Time limits: a watchdog thread for code running in threads, a timer for coroutines.

The effective limits of a call are ``(soft, hard)`` seconds, resolved once, in the core
(:func:`celeriac._call_options.time_limits`: the call's ``timelimit`` header, else the task's
option, else the ``task_soft_time_limit``/``task_time_limit`` setting). This module only
enforces them.

* Code running in a thread (``-P threads``, ``-P solo``, and sync tasks on ``-P asyncio``):
  a :class:`Watchdog` thread raises :class:`~celeriac.exceptions.SoftTimeLimitExceeded` inside
  the task's thread when the soft limit passes (``PyThreadState_SetAsyncExc``), which the task
  can catch to clean up. At the hard limit it raises
  :class:`~celeriac.exceptions.TimeLimitExceeded` the same way, again every second until the
  task's code gives up, and the outcome is FAILURE with TimeLimitExceeded whatever the code
  did with it. A thread cannot be killed: an asynchronous exception is only seen when the
  thread runs Python bytecode, so a task blocked in C code or a system call (``time.sleep``,
  a socket read, a long numpy call) is interrupted only when that call returns, and its slot
  stays busy until then. ``-P prefork`` kills the child process at the hard limit instead.
* ``async def`` code (``-P asyncio``, and ``async def`` tasks on the threads pool, which run
  under ``asyncio.run`` in the slot thread): :func:`run_limited` cancels the coroutine's
  asyncio task at the soft limit, so the coroutine sees :class:`asyncio.CancelledError` (with
  the message ``"SoftTimeLimitExceeded"``) at its current ``await``; it may catch it to clean
  up (and return a value, which then is the result); if the cancellation propagates, the
  outcome is FAILURE with SoftTimeLimitExceeded. At the hard limit the coroutine is cancelled
  again and the outcome, FAILURE with TimeLimitExceeded, is reported at once; a coroutine that
  ignores cancellation, or blocks the loop in sync code, cannot be stopped.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._log import get_logger
from celeriac.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

__all__ = ["Armed", "HardInterrupt", "SoftInterrupt", "Watchdog", "run_limited"]

_log = get_logger("celeriac.worker")


class SoftInterrupt(SoftTimeLimitExceeded):
    """What the watchdog raises in a thread at the soft limit (instantiated with no argument)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("soft time limit exceeded",)))


class HardInterrupt(TimeLimitExceeded):
    """What the watchdog raises in a thread at the hard limit (instantiated with no argument)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("hard time limit exceeded",)))


def _async_raise(ident: int, exc_type: type[BaseException] | None) -> None:
    """Make ``exc_type`` pending in thread ``ident`` (None clears a pending one)."""
    exc = ctypes.py_object(exc_type) if exc_type is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc)


class _Flush(BaseException):
    """Replaces a pending interrupt in the calling thread, which then catches it at once."""


def _drop_own_pending() -> None:
    """Drop an interrupt still pending in the calling thread.

    Not by ``PyThreadState_SetAsyncExc(ident, NULL)`` alone: on CPython 3.11 that signals the
    eval loop with nothing to deliver, and under a trace function (coverage, a debugger) the
    thread then spins at its next call for ever. A pending :class:`_Flush` replaces the
    interrupt and is delivered at the loop's next check (a backward jump), caught here.
    """
    try:
        _async_raise(threading.get_ident(), _Flush)  # (may land as the C call returns)
        for _ in range(10_000):
            pass
    except _Flush:
        return
    _async_raise(threading.get_ident(), None)  # not delivered (never seen): clear it after all


@dataclass(eq=False, slots=True)
class Armed:
    """The limits of the task running in one thread, and which of them fired."""

    ident: int
    task_id: str
    soft_at: float | None
    hard_at: float | None
    active: bool = True
    soft_fired: bool = False
    hard_fired: bool = False

    def next_deadline(self) -> float | None:
        """The next monotonic time at which something is due (None: nothing left)."""
        pending = [t for t in (None if self.soft_fired else self.soft_at, self.hard_at) if t]
        return min(pending) if pending else None


class Watchdog:
    """Time limits for tasks running in threads: one watchdog thread serves many task threads.

    A task thread calls :meth:`arm` before the task's code and :meth:`disarm` after it; in
    between, the watchdog raises ``SoftTimeLimitExceeded`` in that thread when the soft limit
    passes and ``TimeLimitExceeded`` when the hard limit passes (again every ``refire`` seconds
    while the code swallows it). Deadlines are read on the injected ``clock``; the watchdog
    thread (started at the first :meth:`arm`) looks at least every ``poll`` seconds, so a
    :class:`~celeriac._clock.FakeClock` moved forward is noticed, and :meth:`check` fires what
    is due right now (for tests).
    """

    def __init__(
        self, clock: Clock = SYSTEM_CLOCK, *, poll: float = 0.05, refire: float = 1.0
    ) -> None:
        self.clock = clock
        self.poll = poll
        self.refire = refire
        self._cond = threading.Condition()
        self._armed: dict[int, Armed] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    def arm(self, soft: float | None, hard: float | None, task_id: str = "") -> None:
        """Start the limits (seconds from now) of the task about to run in this thread."""
        now = self.clock.monotonic()
        entry = Armed(
            threading.get_ident(),
            task_id,
            now + soft if soft else None,
            now + hard if hard else None,
        )
        with self._cond:
            self._armed[entry.ident] = entry
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._loop, name="celeriac-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def disarm(self) -> Armed | None:
        """End this thread's limits; what fired (None if nothing was armed). Never raises.

        A limit that fired just before this call may still be pending: it is dropped, or, if
        it lands while this runs, caught here (the returned flags tell what fired).
        """
        ident = threading.get_ident()
        while True:
            try:
                with self._cond:
                    entry = self._armed.get(ident)
                    if entry is not None:
                        entry.active = False
                if entry is not None and (entry.soft_fired or entry.hard_fired):
                    _drop_own_pending()
                return entry
            except (SoftInterrupt, HardInterrupt):
                continue  # fired before we deactivated it: landed here, now consumed

    def check(self) -> float | None:
        """Fire every limit that is due now; the next deadline (None: nothing armed)."""
        with self._cond:
            return self._check_locked()

    def wake(self) -> None:
        """Make the watchdog thread look at the clock now (after a fake clock moved)."""
        with self._cond:
            self._cond.notify()

    def stop(self) -> None:
        """Stop the watchdog thread (limits armed later start it again)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _check_locked(self) -> float | None:
        now = self.clock.monotonic()
        upcoming: float | None = None
        for entry in self._armed.values():
            if not entry.active:
                continue
            self._fire_due(entry, now)
            nxt = entry.next_deadline()
            if nxt is not None and (upcoming is None or nxt < upcoming):
                upcoming = nxt
        return upcoming

    def _fire_due(self, entry: Armed, now: float) -> None:
        """Raise in ``entry``'s thread the limit that is due at ``now``, if any."""
        if entry.hard_at is not None and now >= entry.hard_at:
            if not entry.hard_fired:
                _log.warning(
                    "hard_time_limit_exceeded",
                    task_id=entry.task_id,
                    note="TimeLimitExceeded raised in the task's thread; code blocked in C "
                    "or a system call only sees it when that call returns (-P prefork "
                    "kills the process instead)",
                )
            entry.hard_fired = True
            entry.hard_at = now + self.refire
            _async_raise(entry.ident, HardInterrupt)
        elif entry.soft_at is not None and not entry.soft_fired and now >= entry.soft_at:
            _log.warning("soft_time_limit_exceeded", task_id=entry.task_id)
            entry.soft_fired = True
            _async_raise(entry.ident, SoftInterrupt)

    def _loop(self) -> None:
        with self._cond:
            while not self._stopping:
                upcoming = self._check_locked()
                if upcoming is None:
                    self._cond.wait()
                else:
                    wait = upcoming - self.clock.monotonic()
                    self._cond.wait(max(0.0, min(wait, self.poll)))


DEFAULT_WATCHDOG = Watchdog()
"""Serves executors made without one (the pools give theirs, on the app's clock)."""


async def run_limited(
    coro: Coroutine[Any, Any, Any],
    soft: float | None,
    hard: float | None,
    task_id: str,
    abandoned: set[asyncio.Future[Any]],
) -> tuple[Any, bool]:
    """Await ``coro`` under its limits: ``(value, hard_fired)``; see the module docstring.

    Soft limit: the coroutine is cancelled; if that cancellation propagates,
    ``SoftTimeLimitExceeded`` is raised here. Hard limit: the coroutine is cancelled again and
    left to unwind in ``abandoned`` (a reference keeps it alive), and ``(None, True)`` returns
    at once.
    """
    if not (soft or hard):
        return await coro, False
    inner: asyncio.Future[Any] = asyncio.ensure_future(coro)
    soft_hit = False

    def on_soft() -> None:
        nonlocal soft_hit
        if not inner.done():
            _log.warning("soft_time_limit_exceeded", task_id=task_id)
            soft_hit = True
            inner.cancel("SoftTimeLimitExceeded")

    timer = asyncio.get_running_loop().call_later(soft, on_soft) if soft else None
    try:
        done, _ = await asyncio.wait({inner}, timeout=hard or None)
    except asyncio.CancelledError:
        inner.cancel()
        raise
    finally:
        if timer is not None:
            timer.cancel()
    if not done:
        _abandon(inner, task_id, abandoned)
        return None, True
    try:
        return inner.result(), False
    except asyncio.CancelledError:
        if soft_hit:
            raise SoftTimeLimitExceeded(f"soft time limit ({soft}s) exceeded") from None
        raise


def _abandon(inner: asyncio.Future[Any], task_id: str, abandoned: set[asyncio.Future[Any]]) -> None:
    """Cancel a coroutine past its hard limit and keep a reference while it unwinds."""
    _log.warning(
        "hard_time_limit_exceeded",
        task_id=task_id,
        note="the coroutine is cancelled and the task reported failed now",
    )
    inner.cancel("TimeLimitExceeded")
    abandoned.add(inner)
    inner.add_done_callback(abandoned.discard)
