"""The worker session's ledger of deliveries whose task type's actor decides when they run.

A delivery of a task type with a rate limit or a cap (:mod:`celeriac.actors.tasktype`) is
*offered* to its type's actor and waits there; the worker session (:mod:`.worker`) keeps it
here, by tag, until the actor *releases* it, so that it can always be handed back to the hub
(warm shutdown) or named in a ``HELLO`` to a restarted hub. Pure bookkeeping, no sockets.

Credit. The hub sends a node at most its credit (``prefetch`` = slots x multiplier). A waiting
delivery must not use up that credit, or a backlog of one limited type would stop the hub from
sending any other type (Celery raises its prefetch count for rate-limited tasks for the same
reason). So the credit of a waiting delivery is handed back as it is offered (up to
``max_uncredited`` of them, which bounds memory and the socket's queue whatever the backlog).
When it is released it counts against the prefetch again: that is a *debt*, and the next
acknowledgements return no credit until it is paid.
"""

from __future__ import annotations

from collections import deque

from celeriac._protocol import Delivery

__all__ = ["GATED_WITHOUT_CREDIT", "GatedDeliveries"]

#: At most this many waiting deliveries hold no credit; past it, the hub sends this node no
#: more work until some are released. Bounded because a node holds them unacknowledged: if it
#: is lost, the hub counts that loss against each of them (``broker_max_deliveries``), as for
#: prefetched ones.
GATED_WITHOUT_CREDIT = 1_000


class GatedDeliveries:
    """Waiting (offered), then ready (released, waiting for a slot); see the module docstring."""

    def __init__(self, max_uncredited: int = GATED_WITHOUT_CREDIT) -> None:
        self.max_uncredited = max_uncredited
        self.waiting: dict[str, Delivery] = {}
        self.uncredited: set[str] = set()
        #: Released by their type, waiting for a free slot (their token is spent: they are not
        #: handed back for another worker, as the prefetch buffer is).
        self.ready: deque[Delivery] = deque()
        self.debt = 0

    def offer(self, tag: str, delivery: Delivery) -> int:
        """Record a delivery given to its type's actor; the credit to hand back now (0 or 1)."""
        self.waiting[tag] = delivery
        if len(self.uncredited) >= self.max_uncredited:
            return 0
        self.uncredited.add(tag)
        return 1

    def release(self, tag: str) -> Delivery | None:
        """Its type lets it run (None: it was handed back meanwhile); the caller runs it or
        puts it in :attr:`ready`."""
        delivery = self.waiting.pop(tag, None)
        if delivery is not None and tag in self.uncredited:
            self.uncredited.discard(tag)
            self.debt += 1
        return delivery

    def credit_back(self) -> int:
        """The credit one finished delivery returns: 1, or 0 while a debt is owed."""
        if self.debt:
            self.debt -= 1
            return 0
        return 1

    def holding_credit(self) -> int:
        """How many of these deliveries count against the prefetch (for a HELLO's credit)."""
        return len(self.ready) + len(self.waiting) - len(self.uncredited)

    def tags(self) -> list[str]:
        """The tags of every delivery here (a HELLO's in-flight list)."""
        return [*self.waiting, *(d.delivery_tag for d in self.ready)]

    def hello(self) -> None:
        """A HELLO announces the whole credit: no debt is owed after it."""
        self.debt = 0

    def take_unstarted(self) -> list[Delivery]:
        """Shutdown: every delivery here, to hand back to the hub; the ledger is left empty."""
        unstarted = [*self.ready, *self.waiting.values()]
        self.ready.clear()
        self.waiting.clear()
        self.uncredited.clear()
        return unstarted
