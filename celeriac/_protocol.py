"""The messages of the wire protocol as typed values: one frozen dataclass per command.

These are pure values (no sockets, no msgpack): the core composes a :class:`TaskMessage`, the
transport encodes and decodes them (:mod:`celeriac._wire`, facade
:mod:`celeriac.transport.protocol`, which explains the frame layout). They live in the core
because the core makes and reads them (a publish, a result, declarations) and must not import
the transport at import time (DESIGN.md section 6); the wire spelling of every field lives in
:mod:`celeriac._wire` only.

Batching: the commands that carry tasks or outcomes (``PUB``, ``TASK``, ``DONE``, ``RES``,
``NACK``, ``START``, ``REJ``) hold a tuple of items, one frame group per item on the wire, so a
peer may put many in one message; ``CONF``, ``WAIT`` and ``CONSUME`` carry lists of ids/names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from celeriac._protocol_keyed import (  # keyed actors and locks (issue 12)
    KEYED_PREFIX,
    KeyedActivate,
    KeyedIdle,
    KeyedSave,
    KeyedStop,
    LockAcquire,
    LockQuery,
    LockRelease,
    host_queue,
    is_keyed_queue,
    keyed_queue,
    split_keyed_queue,
)
from celeriac._protocol_limits import (
    LIST_BYTES,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_NAME,
    MAX_PRIORITY,
    MAX_TEXT,
    TAG,
    id_chunks,
)
from celeriac._protocol_parts import (
    Binding,
    DeadLetter,
    Delivery,
    ExchangeDecl,
    FailureInfo,
    QueueDecl,
    Refusal,
    Rejection,
    ResultMessage,
    TaskMessage,
    TaskRef,
    WorkerEvent,
)

if TYPE_CHECKING:
    from dataclasses import dataclass as _hot
else:  # the item commands made per publish or batch: plain slots at run time (_protocol_parts)
    from celeriac._protocol_parts import _hot

__all__ = [
    "KEYED_PREFIX",
    "LIST_BYTES",
    "MAX_ARGS",
    "MAX_COUNT",
    "MAX_ITEMS",
    "MAX_META",
    "MAX_NAME",
    "MAX_PRIORITY",
    "MAX_TEXT",
    "TAG",
    "BeatGrant",
    "BeatLease",
    "BeatSave",
    "Binding",
    "Bye",
    "Confirm",
    "Consume",
    "Credit",
    "DeadLetter",
    "Declare",
    "Deliver",
    "Delivery",
    "Done",
    "Error",
    "ExchangeDecl",
    "FailureInfo",
    "Forget",
    "Hello",
    "InfoQuery",
    "KeyedActivate",
    "KeyedIdle",
    "KeyedSave",
    "KeyedStop",
    "LockAcquire",
    "LockQuery",
    "LockRelease",
    "Message",
    "Nack",
    "Ping",
    "Pong",
    "Publish",
    "QueueDecl",
    "Refusal",
    "Reject",
    "Rejection",
    "Reply",
    "Result",
    "ResultMessage",
    "Revoke",
    "RevokeHeld",
    "Start",
    "Stat",
    "TaskInfo",
    "TaskMessage",
    "TaskRef",
    "TaskState",
    "Wait",
    "Welcome",
    "WorkerEvent",
    "host_queue",
    "id_chunks",
    "is_keyed_queue",
    "keyed_queue",
    "split_keyed_queue",
]

Role = Literal["client", "worker"]
OnLost = Literal["requeue", "fail"]


# -- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declare:
    """peer -> hub: exchanges and queues (with bindings) to declare."""

    COMMAND: ClassVar[bytes] = b"DECLARE"
    exchanges: tuple[ExchangeDecl, ...] = ()
    queues: tuple[QueueDecl, ...] = ()


@dataclass(frozen=True, slots=True)
class Hello:
    """peer -> hub: who I am, what I consume, my credit and the deliveries I still hold."""

    COMMAND: ClassVar[bytes] = b"HELLO"
    role: Role = "client"
    node: str = "?"
    pid: int | None = None
    on_lost: OnLost | None = None
    queues: tuple[str, ...] = ()
    declare: Declare | None = None
    credit: int = 0
    inflight: tuple[str, ...] = ()
    #: A client that takes a ``RES`` for a publish it holds unconfirmed as its confirmation
    #: (the hub may then hold that ``CONF`` for the ``RES``: transport/hub/confirmhold.py).
    results_confirm: bool = False


@dataclass(frozen=True, slots=True)
class Welcome:
    """hub -> peer: the hub's incarnation id and heartbeat interval."""

    COMMAND: ClassVar[bytes] = b"WELCOME"
    hub: str
    heartbeat: float
    #: The name the hub knows this peer by: its own, or made unique (``name#2``) when another
    #: live worker already has it.
    node: str | None = None


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


@dataclass(frozen=True, slots=True)
class Ping:
    """either way: heartbeat (a worker's carries how many tasks it runs)."""

    COMMAND: ClassVar[bytes] = b"PING"
    hub: str | None = None
    inflight: int | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """either way: heartbeat answer; ``known`` False: the hub does not know the peer."""

    COMMAND: ClassVar[bytes] = b"PONG"
    hub: str | None = None
    known: bool | None = None


@dataclass(frozen=True, slots=True)
class Bye:
    """peer -> hub: leaving; requeue anything I still hold."""

    COMMAND: ClassVar[bytes] = b"BYE"


@dataclass(frozen=True, slots=True)
class Error:
    """hub -> peer: refused (``code``: ``hello``, ``distrusted``, ``declaration``...)."""

    COMMAND: ClassVar[bytes] = b"ERR"
    code: str
    reason: str | None = None
    hub: str | None = None


from ._protocol_beat import BeatGrant, BeatLease, BeatSave  # noqa: E402
from ._protocol_compat import MAX_ARGS, MAX_META, InfoQuery, TaskInfo, TaskState  # noqa: E402

# Control and events (issue 9): their own module, re-exported here.
from ._protocol_control import (  # noqa: E402
    ControlCommand,
    ControlJoin,
    ControlReply,
    ControlRequest,
    ControlSent,
    EventBatch,
)

__all__ += ["ControlCommand", "ControlJoin", "ControlReply", "ControlRequest", "ControlSent"]
__all__ += ["EventBatch"]
from ._protocol_control2 import ControlReplyPart  # noqa: E402

__all__ += ["ControlReplyPart"]

from ._protocol_canvas import RevokeHeld  # noqa: E402  (the canvas lane's messages)

Message = (
    Hello
    | Declare
    | Welcome
    | Publish
    | Confirm
    | Nack
    | Deliver
    | Done
    | Credit
    | Start
    | Reject
    | Consume
    | Wait
    | Result
    | Stat
    | Reply
    | Forget
    | Revoke
    | RevokeHeld
    | Ping
    | Pong
    | Bye
    | Error
    | BeatLease
    | BeatSave
    | BeatGrant
    | TaskState
    | InfoQuery
    | TaskInfo
    | ControlJoin
    | ControlRequest
    | ControlSent
    | ControlCommand
    | ControlReply
    | ControlReplyPart
    | EventBatch
    | KeyedActivate
    | KeyedSave
    | KeyedIdle
    | KeyedStop
    | LockAcquire
    | LockRelease
    | LockQuery
)
