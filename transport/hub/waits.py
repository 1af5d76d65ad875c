"""Bounded waits: how many results one peer may wait for at once, and freeing them.

A ``WAIT`` for an id with no result yet registers the peer as a waiter. Without a bound, a
peer asking for millions of made-up ids grows the hub's memory for good. So each peer may
wait for at most ``hub_max_waits_per_peer`` ids at once (default
:data:`~.limits.MAX_WAITS_PER_PEER`) (celeriac's client asks again after a
hub restart, so nothing honest needs more); over that, the ``WAIT`` is refused with
``ERR waits`` and counted (``refused``). A peer's waits are freed when its result arrives
and when the peer is dropped (goodbye, lost, distrusted).
"""

from __future__ import annotations

from collections.abc import Iterable

from celeriac._log import get_logger

from .. import protocol as p
from .base import HubBase
from .limits import MAX_WAITS_PER_PEER

__all__ = ["Waits"]

_log = get_logger("celeriac.hub")


class Waits(HubBase):
    """Counting each peer's registered waits."""

    _waits_by_peer: dict[bytes, int]
    #: Results one peer may wait for at once (``hub_max_waits_per_peer``).
    max_waits_per_peer: int = MAX_WAITS_PER_PEER

    def _wait_counts(self) -> dict[bytes, int]:
        counts: dict[bytes, int] | None = getattr(self, "_waits_by_peer", None)
        if counts is None:
            counts = self._waits_by_peer = {}
        return counts

    def _wait_allowed(self, identity: bytes, mid: str) -> bool:
        """Count a new wait of ``identity`` for ``mid``; False (refused) over the limit."""
        waiting = self._waiters.get(mid)
        if waiting is not None and identity in waiting:
            return True
        counts = self._wait_counts()
        n = counts.get(identity, 0)
        if n >= self.max_waits_per_peer:
            self.counters["refused"] += 1
            if n == self.max_waits_per_peer:
                _log.warning("waits_refused", peer=identity[:64], limit=self.max_waits_per_peer)
                counts[identity] = n + 1  # logged once until it drops below the limit
            reason = f"at most {self.max_waits_per_peer} results may be waited for at once"
            self._send(identity, p.Error("waits", reason))
            return False
        counts[identity] = n + 1
        return True

    def _waits_done(self, identities: Iterable[bytes]) -> None:
        counts = self._wait_counts()
        for identity in identities:
            n = min(counts.get(identity, 0), self.max_waits_per_peer) - 1
            if n > 0:
                counts[identity] = n
            else:
                counts.pop(identity, None)

    def _forget_waits(self, identity: bytes) -> None:
        """Free every wait of a peer that is gone."""
        if self._wait_counts().pop(identity, None) is None:
            return
        for mid in [m for m, who in self._waiters.items() if identity in who]:
            who = self._waiters[mid]
            who.discard(identity)
            if not who:
                del self._waiters[mid]
