"""The messages of remote control, inspection and events (issue 9): frozen dataclasses.

How it works
------------
A client sends :class:`ControlRequest` to the hub: a command name, its arguments, and the
nodes it is for (``destination``; None: all). The hub answers at once with
:class:`ControlSent`, naming the nodes it forwarded the command to and those it does not know,
then sends each node a :class:`ControlCommand` over the ROUTER socket (never over PUB: a PUB
drops). Each node answers with :class:`ControlReply`, which the hub relays to the requester
under the requester's ``rid``. The requester collects replies until every node named in
``ControlSent`` answered, ``limit`` replies came, or its timeout passed: a node that did not
answer in time is reported missing, never waited for forever.

A node says it answers control commands with :class:`ControlJoin` (after each ``WELCOME``): a
thread/solo/asyncio worker for itself, a prefork parent for its whole node (its children do
not join). Commands the hub answers itself (queue lengths, dead letters, purge, scheduled,
revoked) are answered from its own state.

Events travel from workers and clients to the hub as :class:`EventBatch` (Celery's event maps:
``type``, ``hostname``, ``timestamp`` and the type's fields); the hub publishes each on its PUB
socket (events may drop: they are for monitors, never for tasks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "ControlCommand",
    "ControlJoin",
    "ControlReply",
    "ControlRequest",
    "ControlSent",
    "EventBatch",
]


@dataclass(frozen=True, slots=True)
class ControlJoin:
    """node -> hub: I answer control commands for the node ``node``."""

    COMMAND: ClassVar[bytes] = b"CTLJOIN"
    node: str


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """client -> hub: run ``command`` with ``arguments`` on the ``destination`` nodes (None:
    every node); ``reply`` False: nobody waits for the answers."""

    COMMAND: ClassVar[bytes] = b"CTLREQ"
    rid: str
    command: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    destination: tuple[str, ...] | None = None
    reply: bool = True


@dataclass(frozen=True, slots=True)
class ControlSent:
    """hub -> client: the request ``rid`` went to ``nodes``; ``unknown`` names no live node."""

    COMMAND: ClassVar[bytes] = b"CTLSENT"
    rid: str
    nodes: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """hub -> node: run ``command``; answer with a :class:`ControlReply` carrying ``rid``."""

    COMMAND: ClassVar[bytes] = b"CTLCMD"
    rid: str
    command: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    reply: bool = True


@dataclass(frozen=True, slots=True)
class ControlReply:
    """node -> hub -> client: ``node``'s answer to ``rid``, msgpack in ``body``."""

    COMMAND: ClassVar[bytes] = b"CTLREP"
    rid: str
    node: str
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class EventBatch:
    """peer -> hub: events to publish (each a map with at least ``type``)."""

    COMMAND: ClassVar[bytes] = b"EVENTS"
    events: tuple[Mapping[str, Any], ...] = ()
