"""The ticker: a daemon thread that wakes an actor with :data:`TICK`, one tick queued at most.

A supervisor never sleeps: it records what is due at a clock reading, and the ticker's tells
make it look at its clock (see :mod:`celeriac.actors.supervisor`).
"""

from __future__ import annotations

import threading
from typing import Any

import pykka

__all__ = ["TICK", "Tick", "Ticker"]


class Tick:
    """Wakes a supervisor to run what its clock says is due."""


#: The one tick told.
TICK = Tick()


class Ticker:
    """A daemon thread that tells :data:`TICK` to an actor every ``interval`` s, one at a time."""

    def __init__(self, ref: pykka.ActorRef[Any], interval: float) -> None:
        self._ref = ref
        self._interval = interval
        self._done = threading.Event()
        self.pending = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ticker-{ref}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            if self.pending.is_set():
                continue
            self.pending.set()
            try:
                self._ref.tell(TICK)
            except pykka.ActorDeadError:
                return

    def close(self) -> None:
        """Stop the thread and wait for it."""
        self._done.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
