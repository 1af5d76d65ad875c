"""The worker's prefetch window: how many deliveries it may hold, sized by how long its tasks take.

How it works
------------
A worker holds at least ``floor`` deliveries (slots x ``worker_prefetch_multiplier``, Celery's
prefetch). While its tasks are quick it holds more: enough for ``seconds`` of work per slot
(``worker_prefetch_window``), at most :data:`MOST_PER_SLOT` a slot. Quick tasks then cross the
hub in batches (one ``TASK`` for many deliveries, one ``DONE`` for many outcomes, a slot taking
its next delivery without a wake-up) instead of a round trip for every few tasks: at the floor
of 4 the hub and worker spent ~300 µs CPU per noop task, at 256 ~140 (issue 18,
``benchmarks/cpu_split.py``). Slow tasks keep the floor, so a worker never sits on much more
than ``seconds`` of another worker's work (and what waits behind a long task still goes back
after ``worker_prefetch_giveback``).

The pool says how long its slots have spent running tasks and how many they ran (a threads pool
times each task in its slot: the task's own time, not how long it waited for the GIL or the
connection, which would shrink the window just when the machine is busy and batches pay most);
every :data:`PERIOD` seconds :meth:`resize` folds that period's average into a moving one and
says by how much the window changes (not for less than a quarter of it). Growing takes effect
at once (the session sends the extra credit); shrinking is paid from credit the session holds
back or from the next outcomes (they return none), see :meth:`.WorkerSession.tick`. A pool that
does not time its tasks keeps the floor. Pure arithmetic, no clock of its own.
"""

from __future__ import annotations

__all__ = ["MOST_PER_SLOT", "PERIOD", "PrefetchWindow"]

#: The most deliveries a worker holds per slot, however quick its tasks: past ~128 the batches
#: gained nothing measurable (cpu_split.py, -c 2: 11.5k noop/s at 128 a slot, 10-11.9k at 128
#: to 512; 7.2k at 16), and the hub's per-peer cap (hub_max_credit_per_peer) is far above it.
MOST_PER_SLOT = 128

#: Seconds between two sizings: often enough to follow a change of workload, rarely enough for
#: an average over many tasks.
PERIOD = 0.1

#: Weight of the newest period in the moving average (one period of slow tasks halves the
#: window's excess at once; a return to quick ones regrows it within a few periods).
WEIGHT = 0.5


class PrefetchWindow:
    """The number of deliveries a worker may hold (:attr:`size`); see the module docstring.

    ``seconds`` 0 keeps the window at ``floor`` (Celery's fixed prefetch).
    """

    def __init__(self, slots: int, floor: int, seconds: float, now: float) -> None:
        self.slots = max(1, slots)
        self.floor = floor
        self.seconds = seconds
        #: The deliveries the worker may hold now (what its credit adds up to).
        self.size = floor
        #: Moving average of a task's time in its slot (None: no task measured yet).
        self.average: float | None = None
        #: The pool's totals at the last sizing: seconds worked, tasks run.
        self._seen: tuple[float, int] = (0.0, 0)
        self._next = now + PERIOD

    def due(self, now: float) -> bool:
        """Whether :meth:`resize` would size the window at ``now`` (the loop reads the pool's
        totals only then: once a period, not every turn)."""
        return now >= self._next and bool(self.seconds)

    def resize(self, now: float, worked: tuple[float, int]) -> int:
        """Once a :data:`PERIOD`, from the pool's totals ``worked`` (seconds its slots spent
        running tasks, tasks run): the change of :attr:`size` (0: none), already applied."""
        if not self.due(now):
            return 0
        self._next = now + PERIOD
        seconds, count = worked[0] - self._seen[0], worked[1] - self._seen[1]
        if count <= 0:
            return 0
        self._seen = worked
        period = max(0.0, seconds) / count
        average = self.average
        self.average = period if average is None else average + WEIGHT * (period - average)
        change = self.target() - self.size
        if abs(change) <= self.size // 4:
            return 0  # within a quarter: not worth a message, and no flapping on noise
        self.size += change
        return change

    def target(self) -> int:
        """The window the moving average asks for: ``seconds`` of work a slot, within bounds."""
        average = self.average
        if average is None:
            return self.floor
        if average * MOST_PER_SLOT <= self.seconds:  # (also keeps a tiny average from inf)
            return max(self.floor, MOST_PER_SLOT * self.slots)
        return max(self.floor, int(self.seconds / average) * self.slots)
