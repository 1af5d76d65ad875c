"""One thread that runs callbacks when they are due: the timers of a node's task-type actors."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from celeriac._log import get_logger

__all__ = ["Timers"]

_log = get_logger("celeriac.worker")


class Timers:
    """One thread that runs callbacks when they are due: the timers of every type actor.

    ``schedule(delay, callback)`` returns a cancel function. Callbacks must be quick (the type
    actors' only tell themselves a tick). The thread starts with the first timer and stops
    with :meth:`stop`.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def schedule(self, delay: float, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` in ``delay`` seconds (real time); the returned function cancels."""
        seq = next(self._seq)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, seq, callback))
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._loop, name="celeriac-type-timers", daemon=True
                )
                self._thread.start()
            self._cond.notify()

        def cancel() -> None:
            with self._cond:
                self._cancelled.add(seq)

        return cancel

    def stop(self) -> None:
        """Stop the thread; pending timers never fire."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                due = self._next_due()
                if due is None:
                    return
            try:
                due()
            except Exception:
                _log.exception("task_type_timer_failed")

    def _next_due(self) -> Callable[[], None] | None:
        """Wait (holding the condition) for the next callback that is due; None: stopping."""
        while not self._stopping:
            if not self._heap:
                self._cond.wait()
                continue
            at, seq, callback = self._heap[0]
            if seq in self._cancelled:
                heapq.heappop(self._heap)
                self._cancelled.discard(seq)
                continue
            wait = at - time.monotonic()
            if wait <= 0:
                heapq.heappop(self._heap)
                return callback
            self._cond.wait(wait)
        return None
