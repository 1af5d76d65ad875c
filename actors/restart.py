"""One restart policy for every supervisor: restart intensity and jittered backoff (pure).

How it works
============

Three things in celeriac restart what dies: the actor :class:`~celeriac.actors.supervisor.
Supervisor`, the worker node's connection loop (``runtime/worker.py``) and the prefork parent
(``runtime/prefork.py``). Each owns a :class:`RestartTracker` built from a
:class:`RestartPolicy` and asks it, every time something must be restarted, what to do::

    tracker = RestartTracker(RestartPolicy(intensity=3, period=5.0), clock=clock)
    decision = tracker.failed("conn")
    if isinstance(decision, Escalate):
        ...  # give up: stop everything and tell whoever is above, with decision.restarts
    else:
        ...  # start it again at decision.due (decision.delay from now)

Restart intensity (Erlang/OTP's MaxR in MaxT)
    Every failure that *counts* is stamped with the clock. If more than ``intensity`` stamps
    fall within the last ``period`` seconds (the window ``(now - period, now]``), the answer is
    :class:`Escalate`, else :class:`Restart`. So at most ``intensity`` restarts are granted in
    any window of ``period`` seconds. A supervisor that escalates stops; the tracker keeps the
    stamp anyway, so asking again right after still escalates. ``counts=False`` asks for a
    backoff without touching the intensity (the prefork parent counts only children that die
    before they are ready: a child killed mid-task is replaced however often it happens).

Backoff
    A restart waits :func:`backoff_delay` of its *attempt*, the number of restarts of the same
    key within the last ``backoff_period`` seconds (``period`` unless given):
    ``base = min(max, min * 2**attempt)`` and a delay drawn uniformly from ``[base/2, base]``
    ("equal jitter": delays grow until the cap and still spread out there, so children that
    die together do not restart in lockstep).

Nothing here sleeps, starts a thread or knows pykka or ZeroMQ: time comes from an injected
:class:`~celeriac._clock.Clock` and randomness from an injected :class:`random.Random`, so the
policy is tested on a fake clock in microseconds.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac.exceptions import ImproperlyConfigured

__all__ = ["Escalate", "Restart", "RestartPolicy", "RestartTracker", "backoff_delay"]


def backoff_delay(attempt: int, minimum: float, maximum: float, rng: random.Random) -> float:
    """The wait before restart number ``attempt`` (0 for the first) of one child.

    ``base = min(maximum, minimum * 2**attempt)``; the delay is uniform in ``[base/2, base]``.
    Until the cap, a delay is never shorter than the one before (its lower bound is the previous
    upper bound); at the cap delays stay jittered in ``[maximum/2, maximum]``.
    """
    base = min(maximum, minimum * 2.0 ** min(attempt, 64))
    return rng.uniform(base / 2.0, base)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """At most ``intensity`` restarts in any ``period`` seconds, each after a jittered backoff.

    ``backoff`` is ``(min, max)`` seconds; ``backoff_period`` is the window in which one key's
    restarts grow its backoff (``period`` when None).
    """

    intensity: int = 3
    period: float = 5.0
    backoff: tuple[float, float] = (0.05, 2.0)
    backoff_period: float | None = None

    def problems(self) -> list[str]:
        """What is wrong with these numbers, one sentence each (empty when they can work)."""
        problems = []
        if self.intensity < 0 or self.period <= 0:
            problems.append(
                f"need intensity >= 0 and period > 0, got {self.intensity}, {self.period}"
            )
        if not 0 <= self.backoff[0] <= self.backoff[1]:
            problems.append(f"backoff must be (min, max) with 0 <= min <= max, got {self.backoff}")
        if self.backoff_period is not None and self.backoff_period <= 0:
            problems.append(f"backoff_period must be positive, got {self.backoff_period}")
        return problems

    def validate(self) -> None:
        """Raise :class:`ImproperlyConfigured` naming every problem, if there is one."""
        problems = self.problems()
        if problems:
            raise ImproperlyConfigured("; ".join(problems))


@dataclass(frozen=True, slots=True)
class Restart:
    """Start it again ``delay`` seconds from the failure, i.e. at clock reading ``due``."""

    delay: float
    due: float
    attempt: int


@dataclass(frozen=True, slots=True)
class Escalate:
    """Give up: ``restarts`` failures (this one included) within ``period`` exceed ``intensity``."""

    restarts: int
    intensity: int
    period: float


class RestartTracker:
    """The restart history of one supervisor; see the module docs.

    The intensity window is shared by every key (one supervisor, all its children); the
    backoff attempts are counted per key (per child).
    """

    def __init__(
        self,
        policy: RestartPolicy,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        policy.validate()
        self.policy = policy
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._window: deque[float] = deque()
        self._recent: dict[Hashable, deque[float]] = {}

    def failed(self, key: Hashable = None, *, counts: bool = True) -> Restart | Escalate:
        """Record one failure of ``key`` now and say whether to restart it (and when)."""
        policy = self.policy
        now = self._clock.monotonic()
        if counts:
            self._window.append(now)
        _trim(self._window, now - policy.period)
        if counts and len(self._window) > policy.intensity:
            return Escalate(len(self._window), policy.intensity, policy.period)
        recent = self._recent.setdefault(key, deque())
        _trim(recent, now - (policy.backoff_period or policy.period))
        attempt = len(recent)
        delay = backoff_delay(attempt, *policy.backoff, self._rng)
        recent.append(now)
        return Restart(delay, now + delay, attempt)

    def forget(self, key: Hashable) -> None:
        """Start ``key``'s backoff afresh (its past restarts still count for the intensity)."""
        self._recent.pop(key, None)

    def recent(self) -> int:
        """How many counted failures fall within the current window."""
        _trim(self._window, self._clock.monotonic() - self.policy.period)
        return len(self._window)


def _trim(stamps: deque[float], horizon: float) -> None:
    """Drop the stamps at or before ``horizon`` (they are out of the window)."""
    while stamps and stamps[0] <= horizon:
        stamps.popleft()
