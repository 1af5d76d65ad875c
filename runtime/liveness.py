"""What a peer knows and says about its hub: whether it answers, and why a result waits.

Operators read these lines first when something is stuck, so each is said once per change
(never a flood) and says what the peer does about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celeriac import states
from celeriac.transport import protocol as p
from celeriac.transport import session

__all__ = ["explain_reply", "log_effects"]


def log_effects(logger: Any, effects: Iterable[session.Effect]) -> None:
    """Log the :class:`~celeriac.transport.session.Log` effects among ``effects``."""
    for effect in effects:
        if isinstance(effect, session.Log):
            getattr(logger, effect.level)(effect.event, **effect.fields)


def _explain_queued(queue: str, consumers: int | None) -> str:
    if p.is_keyed_queue(queue):
        actor, key = p.split_keyed_queue(queue)
        if not consumers:
            return f"it waits for actor {actor!r} key {key!r}, and no worker hosts {actor!r}"
        return f"it waits for actor {actor!r} key {key!r}: its calls run one at a time"
    if not consumers:
        return f"it is queued in {queue!r}, and no worker consumes {queue!r}"
    return f"it is queued in {queue!r} ({consumers} consumer(s)), waiting its turn or its eta"


def explain_reply(reply: p.Reply) -> str:
    """A hub's STAT reply as the reason a result has not come."""
    if reply.worker is not None and reply.state == states.STARTED:
        return f"it is running on worker {reply.worker}"
    if reply.worker is not None:
        return (
            f"worker {reply.worker} has it (it may be running: set task_track_started to tell "
            "running from waiting there)"
        )
    if reply.queue is not None:
        return _explain_queued(reply.queue, reply.consumers)
    if reply.state != states.PENDING:
        return f"its result is stored at the hub (state {reply.state})"
    return (
        "the hub does not know it: an id nobody published, or a result that expired "
        "(result_expires) or was forgotten"
    )
