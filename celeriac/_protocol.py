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

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeVar

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

#: Protocol name and version, the first frame of every message. ``CLR2``: a message may carry
#: several frame groups (items); a ``CLR1`` peer would have ignored all but the first.
TAG: Final = b"CLR2"
#: Longest id, name, routing key or content type (AMQP short strings).
MAX_NAME: Final = 255
#: Longest free text (a reason, an origin, a traceback line is never sent in a header).
MAX_TEXT: Final = 4096
#: Largest count (credit, deliveries, retries, pid, request id).
MAX_COUNT: Final = 2**31 - 1
#: Most items in one message, and most entries in one list field.
MAX_ITEMS: Final = 100_000
#: Priorities are 0..255 (RabbitMQ's range).
MAX_PRIORITY: Final = 255
_T = TypeVar("_T")

#: Bytes of listed ids (or refusals) in one message (CONF, NACK, WAIT, REVOKE): well under the
#: 64 KiB header limit (``celeriac._wire.MAX_HEADER_BYTES``), so longer lists are split.
LIST_BYTES: Final = 32 * 1024


def id_chunks(
    items: Sequence[_T],
    size: Callable[[_T], int] = len,  # type: ignore[assignment]
) -> Iterator[tuple[_T, ...]]:
    """``items`` in order, in runs whose ``size`` (plus 8 bytes of framing each) adds up to at
    most :data:`LIST_BYTES`, one item at least per run."""
    run: list[_T] = []
    total = 0
    for item in items:
        n = size(item) + 8
        if run and total + n > LIST_BYTES:
            yield tuple(run)
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        yield tuple(run)


Role = Literal["client", "worker"]
OnLost = Literal["requeue", "fail"]
Unroutable = Literal["error", "dead_letter"]
ExchangeType = Literal["direct", "topic", "fanout"]


if TYPE_CHECKING:
    from dataclasses import dataclass as _hot
else:
    # The messages built several times per task (a task message about four times: composed,
    # decoded at the hub, at the worker, swapped for a retry) are, at run time, slotted
    # dataclasses without the frozen check: a frozen dataclass's __init__ assigns each field
    # through object.__setattr__, 4.5 us for TaskMessage's 22 fields against 0.6 us plain.
    # mypy still sees them frozen, so no checked code can assign to one; unsafe_hash keeps
    # them hashable exactly as the frozen ones are.
    def _hot(*, frozen: bool, slots: bool) -> Any:
        return dataclass(slots=slots, unsafe_hash=frozen)


# -- parts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binding:
    """A queue's binding to an exchange with a routing key (a topic pattern on topic exchanges)."""

    exchange: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class ExchangeDecl:
    """An exchange to declare at the hub."""

    name: str
    type: ExchangeType = "direct"


@dataclass(frozen=True, slots=True)
class QueueDecl:
    """A queue to declare at the hub, with its bindings."""

    name: str
    max_priority: int | None = None
    bindings: tuple[Binding, ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why the hub moved a message to the dead-letter queue (added to its header)."""

    reason: str
    queue: str
    at: float


@dataclass(frozen=True, slots=True)
class FailureInfo:
    """The body of a failed result: enough to rebuild the exception on the client."""

    exc_type: str
    exc_module: str
    exc_message: tuple[Any, ...] = ()
    traceback: str | None = None


@_hot(frozen=True, slots=True)
class TaskMessage:
    """One task as published (Celery protocol v2 fields) and its opaque body.

    ``raw`` is the header exactly as received (set by decoding, never compared): the hub
    stores and forwards those bytes instead of encoding the header again.
    """

    id: str
    task: str = ""
    body: bytes = b""
    content_type: str = "application/json"
    queue: str = ""
    exchange: str | None = None
    routing_key: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    origin: str | None = None
    reply: bool = False
    ignore_result: bool | None = None  # None: the worker's task_ignore_result decides
    eta: float | None = None
    expires: float | None = None
    priority: int | None = None
    retries: int = 0
    timelimit: tuple[float | None, float | None] | None = None
    headers: Mapping[str, Any] | None = None
    unroutable: Unroutable = "error"
    dead_letter: DeadLetter | None = None
    # Chords counted at the hub (issue 8): a header task names the chord it counts toward (the
    # id of the chord's unlock message); the unlock message says how many it waits for.
    chord: str | None = None
    chord_size: int | None = None
    raw: bytes = field(default=b"", init=False, compare=False, repr=False)


@_hot(frozen=True, slots=True)
class Delivery:
    """A task handed to a worker: the message, the queue it came from, how many times it was
    delivered, and its delivery tag when that differs from the task id (a fanout copy)."""

    task: TaskMessage
    queue: str
    deliveries: int = 1
    tag: str | None = None

    @property
    def delivery_tag(self) -> str:
        """What acknowledges this delivery: the tag, else the task id."""
        return self.tag if self.tag is not None else self.task.id


@_hot(frozen=True, slots=True)
class ResultMessage:
    """The outcome of one task (``DONE``), as stored and pushed to waiters (``RES``).

    ``store`` False: push to waiters only; ``credit``: slots the worker frees with it;
    ``hub``: made by the hub (the body is msgpack :class:`FailureInfo`).
    """

    id: str
    state: str
    body: bytes = b""
    content_type: str = "application/json"
    tag: str | None = None
    store: bool = True
    credit: int = 0
    hub: bool = False
    # A RETRY outcome (issue 8): the body is the next attempt's task body; it runs at this time.
    retry_eta: float | None = None
    # The ids of the tasks this task sent while it ran (``AsyncResult.children``, issue 8).
    children: tuple[str, ...] = ()
    raw: bytes = field(default=b"", init=False, compare=False, repr=False)

    @property
    def delivery_tag(self) -> str:
        """The delivery this outcome acknowledges."""
        return self.tag if self.tag is not None else self.id


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A delivery named by task id and tag (``START``)."""

    id: str
    tag: str | None = None

    @property
    def delivery_tag(self) -> str:
        """The delivery meant."""
        return self.tag if self.tag is not None else self.id


@dataclass(frozen=True, slots=True)
class Rejection:
    """A delivery given back (``requeue``) or dropped with a reason, returning ``credit``."""

    id: str
    tag: str | None = None
    requeue: bool = True
    reason: str | None = None
    credit: int = 0

    @property
    def delivery_tag(self) -> str:
        """The delivery meant."""
        return self.tag if self.tag is not None else self.id


@dataclass(frozen=True, slots=True)
class Refusal:
    """A publish the hub refused, and why."""

    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class WorkerEvent:
    """The payload of ``worker-online`` / ``worker-offline`` events."""

    hostname: str
    queues: tuple[str, ...] | None = None
    reason: str | None = None
    #: Celery's fields of a worker event: the worker's pid, heartbeat interval, software.
    pid: int | None = None
    freq: float | None = None
    sw_ident: str | None = None
    sw_ver: str | None = None
    sw_sys: str | None = None


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


@dataclass(frozen=True, slots=True)
class Welcome:
    """hub -> peer: the hub's incarnation id and heartbeat interval."""

    COMMAND: ClassVar[bytes] = b"WELCOME"
    hub: str
    heartbeat: float
    #: The name the hub knows this peer by: its own, or made unique (``name#2``) when another
    #: live worker already has it.
    node: str | None = None


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Deliver:
    """hub -> worker: deliveries (``TASK``), never more than the worker's credit."""

    COMMAND: ClassVar[bytes] = b"TASK"
    deliveries: tuple[Delivery, ...]


@dataclass(frozen=True, slots=True)
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
