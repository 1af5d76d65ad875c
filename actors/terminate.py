"""Revoked tasks at the worker: deliveries that must not start, running ones to stop.

How it works
------------
The hub tells the worker holding a revoked task (``CANVAS_REVOKED``, see
:mod:`celeriac.transport.hub.canvas`). The connection thread calls :meth:`Terminations.revoke`
for each id, and :meth:`Terminations.terminate` too when the revoke asked for it.

* A delivery that has not started (prefetched, or waiting behind a rate limit) is ended by the
  executor when its slot takes it: :meth:`Terminations.is_revoked` says so, it runs nothing and
  ends REVOKED with ``task_revoked(terminated=False)``, as Celery's worker does.
* A running task is stopped where it runs. In a thread (``-P threads``, ``-P solo``, sync tasks
  on ``-P asyncio``) :class:`TaskTerminated` is raised inside that thread
  (``PyThreadState_SetAsyncExc``, the watchdog's mechanism): it derives from
  ``BaseException``, so ``except Exception`` in task code does not swallow it, and ``finally``
  blocks run. Like a time limit, it is only seen while the thread runs Python bytecode: a task
  blocked in C code or a system call (``time.sleep(60)``, a socket read) stops when that call
  returns. An ``async def`` task is cancelled (``asyncio.CancelledError`` at its current
  ``await``, which it may catch to clean up; it still ends REVOKED). ``-P prefork`` signals
  the child process instead (:mod:`celeriac.runtime.prefork`), which stops any code.
  The task ends REVOKED (:class:`~celeriac.exceptions.TaskRevokedError`), ``task_revoked``
  is sent with ``terminated=True`` and the signal number, and its errbacks are called.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal as signal_module
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from .watchdog import _async_raise, _drop_own_pending

__all__ = ["TERMINATIONS", "TaskTerminated", "Terminations", "signal_number"]

#: How many revoked ids a worker process remembers (the hub holds the durable set).
MAX_REMEMBERED: Final = 50_000


class TaskTerminated(BaseException):
    """Raised inside a running task that was revoked with ``terminate=True``."""

    def __init__(self, signum: int | None = None) -> None:
        super().__init__(signum)
        self.signum = signum


class _Interrupt(TaskTerminated):
    """What is raised in the task's thread (by type: async exceptions take no arguments)."""


def signal_number(name: str | int | None) -> int:
    """The number of a signal given by name (``"SIGTERM"``, ``"TERM"``) or number; SIGTERM."""
    if name is None or name == "":
        return int(signal_module.SIGTERM)
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    upper = str(name).upper()
    upper = upper if upper.startswith("SIG") else "SIG" + upper
    try:
        return int(signal_module.Signals[upper])
    except KeyError:
        return int(signal_module.SIGTERM)


@dataclass(eq=False, slots=True)
class _Running:
    task_id: str
    ident: int | None = None
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task[Any] | None = None
    active: bool = True
    fired: bool = False
    signum: int | None = None


class Terminations:
    """The revoked ids of this process and the tasks running in it (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: OrderedDict[str, None] = OrderedDict()
        self._running: dict[str, _Running] = {}

    def revoke(self, task_id: str) -> None:
        """Remember ``task_id`` as revoked: its delivery ends REVOKED instead of starting."""
        with self._lock:
            self._revoked[task_id] = None
            while len(self._revoked) > MAX_REMEMBERED:
                self._revoked.popitem(last=False)

    def is_revoked(self, task_id: str) -> bool:
        """True if ``task_id`` was revoked (told by the hub while this worker held it)."""
        return task_id in self._revoked

    def terminate(self, task_id: str, signum: int) -> bool:
        """Stop ``task_id`` if it runs in this process; True if it was found running."""
        with self._lock:
            entry = self._running.get(task_id)
            if entry is None or not entry.active or entry.fired:
                return False
            entry.fired, entry.signum = True, signum
            if entry.ident is not None:
                _async_raise(entry.ident, _Interrupt)
            elif entry.loop is not None and entry.task is not None:
                entry.loop.call_soon_threadsafe(entry.task.cancel, "terminated")
        return True

    def in_thread(self, task_id: str) -> contextlib.AbstractContextManager[None]:
        """Around task code running in this thread: it may be terminated meanwhile."""
        return _InThread(self, _Running(task_id, threading.get_ident()))  # (by position: 0.1 us)

    @contextlib.contextmanager
    def in_task(self, task_id: str) -> Iterator[None]:
        """Around an ``async def`` task awaited in this asyncio task: terminating cancels it,
        and the cancellation comes out of this block as :class:`TaskTerminated`."""
        current = asyncio.current_task()
        entry = _Running(task_id, loop=asyncio.get_running_loop(), task=current)
        self._add(entry)
        try:
            yield
        except asyncio.CancelledError:
            if not entry.fired:
                raise
            if current is not None:
                current.uncancel()
            raise TaskTerminated(entry.signum) from None
        finally:
            with self._lock:
                entry.active = False
                self._running.pop(task_id, None)
        if entry.fired:  # cancelled, but the coroutine caught it and returned
            if current is not None and current.cancelling():
                current.uncancel()
            raise TaskTerminated(entry.signum)

    def _add(self, entry: _Running) -> None:
        with self._lock:
            self._running[entry.task_id] = entry


class _InThread:
    """:meth:`Terminations.in_thread` (a class, not a generator: it is entered for every task,
    and the generator's machinery cost a microsecond of the slot's few dozen)."""

    __slots__ = ("_entry", "_owner")

    def __init__(self, owner: Terminations, entry: _Running) -> None:
        self._owner, self._entry = owner, entry

    # Terminations._add and the removal are inlined: two calls less a task (issue 18).

    def __enter__(self) -> None:
        owner, entry = self._owner, self._entry
        with owner._lock:
            owner._running[entry.task_id] = entry

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        # Deactivate the entry; drop an interrupt that fired too late to be useful.
        owner, entry = self._owner, self._entry
        while True:
            try:
                with owner._lock:
                    entry.active = False
                    if owner._running.get(entry.task_id) is entry:
                        del owner._running[entry.task_id]
                if entry.fired:
                    _drop_own_pending()
                break
            except _Interrupt:
                continue  # landed here, after the task's code: consumed
        if isinstance(exc, _Interrupt):
            raise TaskTerminated(entry.signum) from None


#: The process's registry (one worker node per process, or several sharing unique task ids).
TERMINATIONS = Terminations()
