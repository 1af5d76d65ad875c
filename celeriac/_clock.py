"""Injected time: real clocks in production, a fake one in tests (nothing sleeps to wait)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What timing code needs: a monotonic reading and wall-clock time, in seconds."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def time(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``time.time`` themselves (no Python frame per
    reading: the hub reads the clock about ten times per task, issue 18)."""

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


class FakeClock:
    """A clock that only moves when told to; safe to read from several threads."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """The current fake reading."""
        with self._lock:
            return self._now

    def time(self) -> float:
        """The same reading, as wall-clock time."""
        return self.monotonic()

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += seconds


SYSTEM_CLOCK = SystemClock()
