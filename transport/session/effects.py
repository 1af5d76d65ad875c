"""What a peer session asks its I/O loop to do: typed effects, returned, never performed.

A session (:mod:`.client`, :mod:`.worker`) has no socket, thread or logger of its own: each
``handle(message, now)``, ``tick(now)`` or local event returns a list of these, and the loop
around it (``runtime/client.py``, the worker's connection) performs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from celeriac._protocol import (
    BeatGrant,
    Delivery,
    Message,
    Refusal,
    Reply,
    ResultMessage,
    TaskInfo,
)

__all__ = [
    "Answer",
    "Dial",
    "Effect",
    "Log",
    "Ready",
    "Resolve",
    "Run",
    "Send",
    "Settled",
    "Stop",
]

Level = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send this message to the hub."""

    message: Message


@dataclass(frozen=True, slots=True)
class Dial:
    """Talk to the hub at ``endpoint`` from now on (failover): drop what is queued for the old
    one, close its socket, open one to ``endpoint``; the effects that follow go there."""

    endpoint: str


@dataclass(frozen=True, slots=True)
class Log:
    """Log ``event`` at ``level`` with these fields (the event names are the public ones)."""

    level: Level
    event: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resolve:
    """Wake whoever waits on ``task_id``: its result arrived, or the hub refused the publish."""

    task_id: str
    result: ResultMessage | Refusal


@dataclass(frozen=True, slots=True)
class Answer:
    """The hub answered the request ``rid`` (a ``STAT``, a ``BEAT_LEASE``, a ``COMPAT.INFO``)."""

    rid: int
    reply: Reply | BeatGrant | TaskInfo


@dataclass(frozen=True, slots=True)
class Settled:
    """No publish is waiting for its confirmation any more (wake ``flush``)."""


@dataclass(frozen=True, slots=True)
class Run:
    """Run this delivery in execution slot ``slot``."""

    slot: int
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Ready:
    """The hub welcomed the worker: ``first`` True the first time (the worker is ready)."""

    hub: str
    first: bool


@dataclass(frozen=True, slots=True)
class Stop:
    """The worker's connection is done (drained, or ``cold``: running tasks were handed back)."""

    cold: bool = False


Effect = Send | Dial | Log | Resolve | Answer | Settled | Run | Ready | Stop
