"""When the hub's loop may leave a turn's writes for a later commit (issue 18).

The loop commits the store before it sends anything, so that a ``CONF`` never leaves before the
publish it confirms is on disk. Most turns under load carry no publish: a worker's ``DONE``
(the message removed, the result stored), its ``START``, credit, pings. Such a turn promises
nothing about the store: what it sends (deliveries of tasks already stored, results pushed to
waiting clients, pings) is true whether or not its writes reach the disk. A commit costs about
90 µs, more than the rest of a one-task turn, so these turns send at once and their writes join
the next commit: the next turn that must commit (a publish, anything else), or at the latest
:data:`COMMIT_DELAY` later.

What a crash (kill -9) can cost: an acknowledgement or a result of the last few milliseconds
is lost from disk, so that task is still stored and runs again after the restart (celeriac is
at-least-once). A confirmed publish is never lost: its turn always commits.

Shared hubs on PostgreSQL never defer: a ``TASK`` there comes from a claim of rows the other
hubs also read, and a claim not yet committed when its hub dies leaves the rows claimable
elsewhere while the worker still runs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from celeriac._clock import Clock

__all__ = ["COMMIT_DELAY", "LAZY_COMMANDS", "LAZY_SENDS", "LazyCommit"]

#: Commands from peers whose handling asks for no commit before the turn's sends.
LAZY_COMMANDS: Final = frozenset({b"DONE", b"START", b"CRED", b"PING", b"PONG"})
#: What such a turn may send before its writes are committed.
LAZY_SENDS: Final = frozenset({b"TASK", b"RES", b"PING", b"PONG"})
#: Seconds at most between a deferred write and its commit.
COMMIT_DELAY: Final = 0.005
#: Turns at most whose writes wait for one commit (bounds one transaction's size).
MAX_DEFERRED_TURNS: Final = 200


class LazyCommit:
    """The loop's bookkeeping of deferred writes: ask :meth:`may_defer` each turn."""

    __slots__ = ("_clock", "_enabled", "_since", "_turns")

    def __init__(self, clock: Clock, *, enabled: bool = True) -> None:
        self._clock = clock
        self._enabled = enabled
        self._since: float | None = None
        self._turns = 0

    def may_defer(self, outbox: Iterable[list[bytes]]) -> bool:
        """Whether the commit of a turn that handled only :data:`LAZY_COMMANDS` may wait:
        it sends only :data:`LAZY_SENDS` and the oldest deferred write is younger than
        :data:`COMMIT_DELAY`. False means: commit now (then call :meth:`committed`)."""
        if not self._enabled or not all(len(f) > 2 and f[2] in LAZY_SENDS for f in outbox):
            return False
        now = self._clock.monotonic()
        if self._since is None:
            self._since = now
        self._turns += 1
        return now - self._since < COMMIT_DELAY and self._turns < MAX_DEFERRED_TURNS

    @property
    def deferred(self) -> bool:
        """Whether writes wait for a commit."""
        return self._since is not None

    def committed(self) -> None:
        """Everything written so far is committed."""
        self._since = None
        self._turns = 0

    def timeout_ms(self, timeout: int) -> int:
        """``timeout`` (ms), shortened so the loop wakes when the deferred writes are due."""
        if self._since is None:
            return timeout
        due = self._since + COMMIT_DELAY - self._clock.monotonic()
        return max(0, min(timeout, int(due * 1000) + 1))
