"""The parts the protocol's commands are made of: tasks, deliveries, results, declarations.

Pure values, like the commands (:mod:`celeriac._protocol`, which re-exports them). The three
built several times per task (:class:`TaskMessage`, :class:`Delivery`, :class:`ResultMessage`)
are hot: see ``_hot`` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

__all__ = [
    "Binding",
    "DeadLetter",
    "Delivery",
    "ExchangeDecl",
    "ExchangeType",
    "FailureInfo",
    "QueueDecl",
    "Refusal",
    "Rejection",
    "ResultMessage",
    "TaskMessage",
    "TaskRef",
    "Unroutable",
    "WorkerEvent",
]

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
