"""Which of several hubs a peer talks to, and when it moves to the next (sans-IO).

How it works
------------
``broker_url`` may list several hubs (:mod:`celeriac._hub_urls`). A peer talks to one at a
time: the first address of ``broker_failover_strategy``'s order. The hub is *lost* by the
liveness rule every peer uses (``hub_lost`` in :mod:`.hubwatch`): nothing heard from it
for :data:`SILENT_HEARTBEATS` heartbeats, counted from the last message or, for a hub that has
not answered yet, from when the peer turned to it. Then :meth:`HubRotation.advance` names the
next address and says ``hub_failover`` (from, to); the loop around the session closes its
socket, opens one to the new address and introduces itself there (a client resends what was
not confirmed and asks again for the results it waits on; a worker says ``HELLO`` with the
deliveries it holds). With one address the rotation never moves: ZeroMQ reconnects to it.

Where a peer starts
    With several hubs a peer first asks them all at once whether they answer (a ``PING``
    each; :class:`HubProbe` decides) and starts at the first *in the strategy's order* among
    those that answered: as soon as the strategy's first hub answers, or :data:`PROBE_GRACE`
    after any other did (so a healthy primary keeps its clients, and a dead one costs a round
    trip, not three heartbeats). ``celeriac status``/``inspect``/``control`` rely on it: the
    first hub that answers carries their request. If none answers in time, the peer starts at
    the strategy's first and fails over as usual.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final

from celeriac._hub_urls import FailoverStrategy, failover_order, hub_addresses

from .effects import Log

__all__ = ["PROBE_GRACE", "SILENT_HEARTBEATS", "HubProbe", "HubRotation"]

#: A hub silent for this many heartbeats is lost (the one liveness rule of the peers).
SILENT_HEARTBEATS: Final = 3
#: Seconds a probe waits, after a hub answered, for hubs earlier in the order to answer too.
PROBE_GRACE: Final = 0.25


class HubRotation:
    """The hub a peer talks to among ``addresses``, in ``strategy``'s order (sans-IO)."""

    def __init__(
        self,
        addresses: Sequence[str],
        *,
        heartbeat: float,
        now: float,
        strategy: str | FailoverStrategy = "round-robin",
        rng: random.Random | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("a hub rotation needs at least one address")
        self.addresses = tuple(addresses)
        self.window = SILENT_HEARTBEATS * heartbeat
        self._order = failover_order(self.addresses, strategy, rng)
        #: The address talked to now, and since when.
        self.current = next(self._order) if self.several else self.addresses[0]
        self.since = now
        #: How many times the peer moved to another hub.
        self.failovers = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        heartbeat: float,
        now: float,
        strategy: str | FailoverStrategy = "round-robin",
        rng: random.Random | None = None,
    ) -> HubRotation:
        """The rotation over the hubs of a checked ``broker_url``."""
        return cls(hub_addresses(url), heartbeat=heartbeat, now=now, strategy=strategy, rng=rng)

    @property
    def several(self) -> bool:
        """Whether there is another hub to move to."""
        return len(self.addresses) > 1

    def order(self) -> tuple[str, ...]:
        """The hubs from the current one on, in the order this rotation would try them."""
        start = self.addresses.index(self.current)
        return self.addresses[start:] + self.addresses[:start]

    def turn_to(self, address: str, now: float) -> None:
        """Talk to ``address`` from now on (where the probe found a hub that answers)."""
        for _ in range(len(self.addresses) * 2):
            if self.current == address:
                break
            self.current = next(self._order)
        self.since = now

    def silent_for(self, last_heard: float | None, now: float) -> float:
        """How long the current hub has said nothing (since we turned to it, at most)."""
        heard = self.since if last_heard is None else max(last_heard, self.since)
        return now - heard

    def due(self, last_heard: float | None, now: float) -> bool:
        """Whether the current hub is lost and there is another to move to."""
        return self.several and self.silent_for(last_heard, now) >= self.window

    def advance(self, last_heard: float | None, now: float) -> Log:
        """Move to the next hub in the strategy's order; the ``hub_failover`` line to log."""
        previous, silent = self.current, self.silent_for(last_heard, now)
        for _ in range(len(self.addresses) * 2):
            self.current = next(self._order)
            if self.current != previous:
                break
        self.since = now
        self.failovers += 1
        fields = {
            "from": previous,
            "to": self.current,
            "silent_for": round(silent, 1),
            "failovers": self.failovers,
        }
        return Log("warning", "hub_failover", fields)


class HubProbe:
    """Which of several hubs to start with: the first in ``order`` among those that answered
    (sans-IO: the loop sends each a ``PING`` and reports answers and time)."""

    def __init__(self, order: Sequence[str], *, started: float, timeout: float) -> None:
        self.order = tuple(order)
        self.deadline = started + timeout
        self.answered: set[str] = set()
        self.first_answer: float | None = None

    def heard(self, address: str, now: float) -> None:
        """``address`` answered."""
        self.answered.add(address)
        if self.first_answer is None:
            self.first_answer = now

    def done(self, now: float) -> bool:
        """Whether the choice is made (or there is no time left to make it)."""
        if now >= self.deadline or (self.order and self.order[0] in self.answered):
            return True
        return self.first_answer is not None and now - self.first_answer >= PROBE_GRACE

    def choice(self) -> str | None:
        """The first hub in ``order`` that answered; None if none did."""
        return next((a for a in self.order if a in self.answered), None)
