"""What a peer session asks its I/O loop to do: typed effects, returned, never performed.

A session (:mod:`.client`, :mod:`.worker`) has no socket, thread or logger of its own: each
``handle(message, now)``, ``tick(now)`` or local event returns a list of these, and the loop
around it (``runtime/client.py``, the worker's connection) performs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from celeriac._protocol import (
    BeatGrant,
    Delivery,
    Message,
    Refusal,
    Reply,
    ResultMessage,
    TaskInfo,
)

if TYPE_CHECKING:
    from dataclasses import dataclass as _hot
else:  # the effects made for every task: frozen for mypy, plain slots at run time (0.30 ->
    # 0.11 us each, three or four a task in the worker's connection: see celeriac._protocol_parts)
    from celeriac._protocol_parts import _hot

__all__ = [
    "Answer",
    "Command",
    "Confirmed",
    "Dial",
    "Effect",
    "Finished",
    "Heartbeat",
    "Keyed",
    "Log",
    "Ready",
    "Recall",
    "Received",
    "Resolve",
    "Run",
    "Send",
    "SendEncoded",
    "Settled",
    "Starting",
    "Stop",
    "Withdraw",
]

Level = Literal["debug", "info", "warning", "error"]


@_hot(frozen=True, slots=True)
class Send:
    """Send this message to the hub."""

    message: Message


@dataclass(frozen=True, slots=True)
class Dial:
    """Talk to the hub at ``endpoint`` from now on (failover): drop what is queued for the old
    one, close its socket, open one to ``endpoint``; the effects that follow go there."""

    endpoint: str


@_hot(frozen=True, slots=True)
class SendEncoded:
    """Send these frames to the hub: already encoded messages (task outcomes encoded in their
    slot's thread), merged into one (:func:`celeriac._wire.next_batch`)."""

    frames: list[bytes]


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
    """No publish is waiting for its confirmation any more (wake ``flush``), or a session
    that was full has room again (wake a publisher blocked by ``broker_max_unconfirmed``)."""


@_hot(frozen=True, slots=True)
class Run:
    """Hand this delivery to execution slot ``slot``: it runs there now, or after what the slot
    holds (run-ahead: its :class:`Starting` comes when it starts)."""

    slot: int
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Recall:
    """Take back these deliveries, each handed to wait in its busy slot (run-ahead), that the
    slot has not begun: ``(slot, delivery)`` pairs. Those taken will never run there (the pool
    withdraws their claim); the loop reports them to ``WorkerSession.recalled``, which runs them
    in a free slot or gives them back to the hub. One the slot has begun is not taken: it runs,
    and its ``START`` comes when the outcome before it arrives."""

    waiting: tuple[tuple[int, Delivery], ...]


@_hot(frozen=True, slots=True)
class Received:
    """The worker took this task delivery (the ``task-received`` event; only while
    :attr:`~.worker.WorkerSession.report_received`)."""

    delivery: Delivery


@_hot(frozen=True, slots=True)
class Starting:
    """Slot ``slot`` runs this delivery now (its ``task-started`` event goes before the
    ``START`` that follows, and before the :class:`Run` if the slot was free)."""

    slot: int
    delivery: Delivery


@_hot(frozen=True, slots=True)
class Finished:
    """Slot ``slot`` has finished this delivery (its type's gate and counters are told)."""

    slot: int
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Withdraw:
    """These deliveries waiting at their type's gate are handed back (shutdown): drop them."""

    deliveries: tuple[Delivery, ...]


@dataclass(frozen=True, slots=True)
class Keyed:
    """A call for a keyed actor hosted here (it runs in its key's own thread, not a slot)."""

    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Command:
    """A command for the node itself: remote control, a revoke, a keyed actor's activation."""

    message: Message


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The hub has processed everything sent before the settle request for ``task_id``."""

    task_id: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A ``PING`` goes out now: the node's own heartbeat work (events, idle keyed actors)."""


@dataclass(frozen=True, slots=True)
class Ready:
    """The hub welcomed the worker: ``first`` True the first time (the worker is ready)."""

    hub: str
    first: bool


@dataclass(frozen=True, slots=True)
class Stop:
    """The worker's connection is done (drained, or ``cold``: running tasks were handed back)."""

    cold: bool = False


Effect = (
    Send
    | Dial
    | SendEncoded
    | Log
    | Resolve
    | Answer
    | Settled
    | Received
    | Recall
    | Starting
    | Run
    | Finished
    | Withdraw
    | Keyed
    | Command
    | Confirmed
    | Heartbeat
    | Ready
    | Stop
)
