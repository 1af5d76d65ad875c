"""One task type's gate: its waiting items, running count and token bucket (pure).

What a :class:`~celeriac.actors.tasktype.TaskTypeActor` decides with, on given clock
readings, so it is tested on a fake clock without threads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from celeriac._limits import TokenBucket, TypeLimits

__all__ = ["TypeGate"]

T = TypeVar("T")


class TypeGate(Generic[T]):
    """One type's waiting items, running count and token bucket; pure, on given clock readings.

    Every method returns the items released by that event, in arrival order.
    """

    def __init__(self, limits: TypeLimits, now: float) -> None:
        self.limits = limits
        self.waiting: deque[T] = deque()
        self.running = 0
        self._bucket = TokenBucket(limits.rate, now) if limits.rate is not None else None

    def offer(self, item: T, now: float) -> list[T]:
        """An item arrives."""
        self.waiting.append(item)
        return self.release(now)

    def finished(self, now: float) -> list[T]:
        """A released item has finished running (or was handed back)."""
        self.running = max(0, self.running - 1)
        return self.release(now)

    def release(self, now: float) -> list[T]:
        """Release what may run now: under the cap, one token each."""
        out: list[T] = []
        cap = self.limits.max_concurrency
        while self.waiting and (cap is None or self.running < cap):
            if self._bucket is not None and not self._bucket.take(now):
                break
            out.append(self.waiting.popleft())
            self.running += 1
        return out

    def wait(self, now: float) -> float | None:
        """Seconds until the rate lets the head go; None if nothing waits for a token."""
        cap = self.limits.max_concurrency
        if not self.waiting or self._bucket is None or (cap is not None and self.running >= cap):
            return None
        return self._bucket.wait(now)

    def withdraw(self, which: Callable[[T], bool]) -> list[T]:
        """Take the waiting items ``which`` selects out (their consumer is gone)."""
        gone = [item for item in self.waiting if which(item)]
        if gone:
            self.waiting = deque(item for item in self.waiting if not which(item))
        return gone

    def drain(self) -> list[T]:
        """Take every waiting item out (shutdown)."""
        items = list(self.waiting)
        self.waiting.clear()
        return items
