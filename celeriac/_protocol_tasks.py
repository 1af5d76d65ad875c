"""The commands that carry tasks and their outcomes: publish and confirm, deliver and done,
credit, start, reject, consume, results and waits, states, revocations.

Pure values like every command (:mod:`celeriac._protocol` re-exports them; the wire spelling is
:mod:`celeriac._wire`'s).

Batching: the commands that carry tasks or outcomes (``PUB``, ``TASK``, ``DONE``, ``RES``,
``NACK``, ``START``, ``REJ``) hold a tuple of items, one frame group per item on the wire, so a
peer may put many in one message; ``CONF``, ``WAIT`` and ``CONSUME`` carry lists of ids/names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from celeriac._protocol_parts import (
    Delivery,
    Refusal,
    Rejection,
    ResultMessage,
    TaskMessage,
    TaskRef,
)

if TYPE_CHECKING:
    from dataclasses import dataclass as _hot
else:  # the item commands made per publish or batch: plain slots at run time (_protocol_parts)
    from celeriac._protocol_parts import _hot

__all__ = [
    "Confirm",
    "Consume",
    "Credit",
    "Deliver",
    "Done",
    "Forget",
    "Nack",
    "Publish",
    "Reject",
    "Reply",
    "Result",
    "Revoke",
    "Start",
    "Stat",
    "Wait",
]


@_hot(frozen=True, slots=True)
class Publish:
    """client -> hub: tasks to route and store."""

    COMMAND: ClassVar[bytes] = b"PUB"
    tasks: tuple[TaskMessage, ...]


@dataclass(frozen=True, slots=True)
class Confirm:
    """hub -> client: these publishes are durable."""

    COMMAND: ClassVar[bytes] = b"CONF"
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Nack:
    """hub -> client: these publishes were refused."""

    COMMAND: ClassVar[bytes] = b"NACK"
    refusals: tuple[Refusal, ...]


@_hot(frozen=True, slots=True)
class Deliver:
    """hub -> worker: deliveries (``TASK``), never more than the worker's credit."""

    COMMAND: ClassVar[bytes] = b"TASK"
    deliveries: tuple[Delivery, ...]


@_hot(frozen=True, slots=True)
class Done:
    """worker -> hub: outcomes; each acknowledges its delivery and returns its credit."""

    COMMAND: ClassVar[bytes] = b"DONE"
    results: tuple[ResultMessage, ...]


@dataclass(frozen=True, slots=True)
class Credit:
    """worker -> hub: more free slots."""

    COMMAND: ClassVar[bytes] = b"CRED"
    credit: int


@dataclass(frozen=True, slots=True)
class Start:
    """worker -> hub: these deliveries started running (``task_track_started``)."""

    COMMAND: ClassVar[bytes] = b"START"
    started: tuple[TaskRef, ...]


@dataclass(frozen=True, slots=True)
class Reject:
    """worker -> hub: give deliveries back (requeue) or drop them."""

    COMMAND: ClassVar[bytes] = b"REJ"
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class Consume:
    """worker -> hub: consume these queues from now on (``[]``: stop consuming)."""

    COMMAND: ClassVar[bytes] = b"CONSUME"
    queues: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Wait:
    """client -> hub: push me the results of these ids."""

    COMMAND: ClassVar[bytes] = b"WAIT"
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Result:
    """hub -> client: results (as stored)."""

    COMMAND: ClassVar[bytes] = b"RES"
    results: tuple[ResultMessage, ...]


@dataclass(frozen=True, slots=True)
class Stat:
    """client -> hub: what is the state of this id? Answered by a ``REPLY`` with ``rid``."""

    COMMAND: ClassVar[bytes] = b"STAT"
    id: str
    rid: int | str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """hub -> peer: the answer to the request ``rid``."""

    COMMAND: ClassVar[bytes] = b"REPLY"
    id: str
    state: str
    rid: int | str | None = None
    #: Where the message is, when the hub holds it: its queue and how many consumers that queue
    #: has, and the node running it (so a client can say why a result has not come).
    queue: str | None = None
    consumers: int | None = None
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class Revoke:
    """client -> hub: revoke these task ids (durably); ``terminate``: also stop a running one
    with ``signal`` (the hub tells its worker: :class:`RevokeHeld`)."""

    COMMAND: ClassVar[bytes] = b"REVOKE"
    ids: tuple[str, ...]
    terminate: bool = False
    signal: str | None = None


@dataclass(frozen=True, slots=True)
class Forget:
    """client -> hub: drop this stored result."""

    COMMAND: ClassVar[bytes] = b"FORGET"
    id: str
