"""Beat's view of its lease at the hub: when to ask again, and whether it may fire now.

Pure (times are passed in, read from a monotonic clock by the caller). The beat asks the hub
for the lease every ``renew_every`` seconds (its heartbeat); the hub grants it for ``ttl``
seconds from when *it* received the request. The beat counts from when it *sent* the request
(``asked``), which is earlier, so its view always ends before the hub's: a beat never believes
it holds a lease the hub has already given to another.

A standby beat (the hub said another holds it, for ``left`` more seconds) asks again at the
earlier of its next heartbeat and the moment that lease would run out, so it takes over within
about ``ttl`` of the holder's last renewal when the holder dies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["TAKEOVER_MARGIN", "LeaseView"]

#: Seconds after the holder's lease would run out at which a standby asks again.
TAKEOVER_MARGIN: Final = 0.05


@dataclass
class LeaseView:
    """One beat's knowledge of its lease (see the module docstring)."""

    ttl: float
    renew_every: float
    held_until: float | None = None
    next_ask: float | None = None

    def holds(self, now: float) -> bool:
        """Whether this beat may fire at ``now`` (monotonic)."""
        return self.held_until is not None and now < self.held_until

    def ask_due(self, now: float) -> bool:
        """Whether it is time to ask the hub (renew, or try to take the lease)."""
        return self.next_ask is None or now >= self.next_ask

    def granted(self, asked: float, ttl: float) -> None:
        """The hub granted the lease asked for at ``asked`` for ``ttl`` seconds."""
        self.held_until = asked + ttl
        self.next_ask = asked + min(self.renew_every, ttl / 2)

    def refused(self, asked: float, left: float) -> None:
        """The hub said another beat holds it for ``left`` more seconds."""
        self.held_until = None
        self.next_ask = asked + min(self.renew_every, left + TAKEOVER_MARGIN)

    def unanswered(self, now: float) -> None:
        """The hub did not answer (the lease runs out on its own at ``held_until``)."""
        self.next_ask = now + self.renew_every

    def lost(self) -> None:
        """The hub said this beat no longer holds the lease."""
        self.held_until = None

    def wake_in(self, now: float) -> float:
        """Seconds until the next ask is due."""
        return 0.0 if self.next_ask is None else max(0.0, self.next_ask - now)
