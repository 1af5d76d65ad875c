"""Which of several hubs a peer talks to, and when it moves to the next (sans-IO).

How it works
------------
``broker_url`` may list several hubs (:mod:`celeriac._hub_urls`). A peer talks to one at a
time: the first address of ``broker_failover_strategy``'s order. The hub is *lost* by the
liveness rule every peer uses (``hub_lost`` in ``runtime/liveness.py``): nothing heard from it
for :data:`SILENT_HEARTBEATS` heartbeats, counted from the last message or, for a hub that has
not answered yet, from when the peer turned to it. Then :meth:`HubRotation.advance` names the
next address and says ``hub_failover`` (from, to); the loop around the session closes its
socket, opens one to the new address and introduces itself there (a client resends what was
not confirmed and asks again for the results it waits on; a worker says ``HELLO`` with the
deliveries it holds). With one address the rotation never moves: ZeroMQ reconnects to it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final

from celeriac._hub_urls import FailoverStrategy, failover_order, hub_addresses

from .effects import Log

__all__ = ["SILENT_HEARTBEATS", "HubRotation"]

#: A hub silent for this many heartbeats is lost (the one liveness rule of the peers).
SILENT_HEARTBEATS: Final = 3


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
