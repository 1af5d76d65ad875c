"""The hub's data: messages, ready queues, peers, and the numbers that bound them."""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from celeriac import states

from .. import protocol as p

__all__ = ["POISON_QUEUE", "Msg", "Peer", "PeerFault", "ReadyQueue"]

#: How many completed ids are remembered to drop duplicate publishes without a store lookup.
RECENT_DONE_LIMIT: Final = 100_000
#: How many distrusted identities are remembered.
DISTRUST_LIMIT: Final = 10_000
HEARTBEAT_MISSES: Final = 3
#: Results hub-made (expired, rejected) have msgpack bodies, whatever the client accepts.
HUB_CONTENT_TYPE: Final = "application/x-msgpack"

BINDINGS_META_KEY: Final = "bindings"
#: Event topics for task outcomes (Celery's event names); the payload is the DONE header.
TASK_EVENTS: Final = {
    states.SUCCESS: b"task-succeeded",
    states.FAILURE: b"task-failed",
    states.REJECTED: b"task-rejected",
    states.REVOKED: b"task-revoked",
}
#: After a connection closed, workers are probed again this many seconds later: for a moment
#: after the socket monitor's event the ROUTER may still accept a send to the dead peer.
REPROBE_AFTER: Final = (0.1, 0.3, 1.0)
#: Where a message goes after its worker was lost ``max_deliveries`` times (a poison message).
POISON_QUEUE: Final = "celeriac.dead_letter"
#: How many recent dead letters ``statistics()`` lists.
DEAD_LETTERS_SHOWN: Final = 50


#: Commands a peer the hub does not know may send (others are refused with ``ERR hello``:
#: see :mod:`.ownership`).
ANONYMOUS: Final = frozenset({p.Hello, p.Declare, p.Publish, p.Bye, p.Ping})
#: Commands only the hub sends: a peer sending one is confused and distrusted.
HUB_ONLY: Final = (
    p.Welcome,
    p.Confirm,
    p.Nack,
    p.Deliver,
    p.Result,
    p.Reply,
    p.Error,
    p.ControlSent,
    p.ControlCommand,
    p.BeatGrant,
    p.KeyedActivate,
    p.KeyedStop,
    p.RevokeHeld,
)


class PeerFault(Exception):
    """A well-formed message the hub still cannot accept (an unsound declaration...)."""


@dataclass(slots=True)
class Msg:
    id: str
    queue: str
    priority: int
    eta: float | None
    expires: float | None
    seq: int
    task: p.TaskMessage  # header as published (its raw bytes are forwarded), body
    holder: bytes | None = None
    queued: bool = False
    deliveries: int = 0
    copy: bool = False  # a fanout copy: its delivery tag differs from the task id
    started: bool = False  # a worker said it runs (task_track_started)
    lost: int = 0  # times its worker was lost while holding it (not persisted)
    delivered_at: float = 0.0  # monotonic time of the last delivery (broker_visibility_timeout)
    light: bool = False  # its body is in the store only (task.body is empty): see .bodies


class ReadyQueue:
    """The ready messages of one queue: FIFO, or highest priority first (FIFO within one)."""

    __slots__ = ("_fifo", "_heap", "max_priority", "name")

    def __init__(self, name: str, max_priority: int | None = None) -> None:
        self.name = name
        self.max_priority = max_priority
        self._fifo: deque[str] = deque()
        self._heap: list[tuple[int, int, str]] = []

    def push(self, msg: Msg, *, front: bool = False) -> None:
        if self.max_priority is not None:
            prio = min(max(msg.priority, 0), self.max_priority)
            heapq.heappush(self._heap, (-prio, msg.seq, msg.id))
        elif front:
            self._fifo.appendleft(msg.id)
        else:
            self._fifo.append(msg.id)

    def pop(self) -> str | None:
        if self._heap:
            return heapq.heappop(self._heap)[2]
        if self._fifo:
            return self._fifo.popleft()
        return None

    def __len__(self) -> int:
        return len(self._fifo) + len(self._heap)


@dataclass(slots=True)
class Peer:
    identity: bytes
    role: str
    node: str
    last_seen: float
    queues: list[str] = field(default_factory=list)
    credit: int = 0
    inflight: set[str] = field(default_factory=set)
    rr: int = 0
    fail_on_lost: bool = False  # HELLO "on_lost": "fail" (task_reject_on_worker_lost=False)
    capped: bool = False  # asked for more credit than hub_max_credit_per_peer (logged once)
    pid: int | None = None  # HELLO "pid"
    results_confirm: bool = False  # HELLO "results_confirm": a RES confirms (.confirmhold)
