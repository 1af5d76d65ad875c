"""The hub's logic as a state object with no sockets: messages in, messages out (sans-IO).

How it works
------------
The hub server feeds every received multipart message to :meth:`HubState.handle` with the
sender's identity, and calls :meth:`HubState.tick` once per loop turn. The state writes to its
:class:`~celeriac.transport.store.Store` (visible at once, durable at the next commit) and
appends the frames it wants sent to :attr:`HubState.outbox`. The server commits the store and
only then sends the outbox, so a ``CONF`` (publish confirmed) never leaves before the message is
on disk.

Messages
    A publish (``PUB``) is routed to one or more queues, stored, confirmed, and either made
    ready or, with an ``eta`` in the future, held in a timer heap until it is due. A message
    stays in the store until a worker says ``DONE`` (acknowledgement after the task finished:
    at-least-once), or it expires, or it is rejected without requeue.

Credit
    A worker announces its free slots in ``HELLO`` and each ``DONE``/``CRED`` returns more.
    The hub never sends a worker more tasks than its credit, so nothing piles up in a busy
    worker while another idles (Celery's prefetch complaint), and mailboxes stay bounded.
    Consumers of one queue are served round robin.

Failure
    A worker that says ``BYE``, misses three heartbeats, or can no longer be routed to (the
    server calls :meth:`HubState.peer_unreachable`) loses its deliveries: they go back to the
    front of their queues and are sent to another consumer. A peer that sends a malformed
    frame (anything :func:`~celeriac.transport.protocol.decode` refuses, or a declaration the
    exchange table finds unsound) is logged, counted and distrusted: everything it held is
    requeued and its later messages are dropped. Nothing a peer sends can raise out of
    :meth:`handle`; handlers work on typed, checked messages, so an exception inside one is a
    bug in the hub: it is logged as ``hub_internal_error`` with its traceback, counted, and
    neither blamed on the peer nor allowed to stop the hub.
    A worker that said ``"on_lost": "fail"`` in its ``HELLO`` (``task_reject_on_worker_lost``
    is False) has what it held ended as FAILURE (``WorkerLostError``) instead of requeued,
    unless it said ``BYE`` (a cold shutdown hands tasks back).

Poison messages
    Each time a message's worker is lost while holding it (not ``BYE``, not ``REJ``), its loss
    count grows; at ``max_deliveries`` losses it is not requeued but moved to the
    :data:`POISON_QUEUE` (``celeriac.dead_letter``: stored durably, delivered only to whoever
    consumes that queue, its header annotated with ``dead_letter``), a FAILURE result with
    ``WorkerLostError`` and the reason is stored for its id, and ``statistics()`` counts and
    lists it.

Duplicates
    A publish whose id is queued, recently done, or has a stored result is confirmed again and
    dropped, so clients may resend unconfirmed publishes after a reconnect.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import structlog

from celeriac import states
from celeriac._clock import Clock
from celeriac.exceptions import FrameError, ProtocolError

from . import protocol as p
from .routing import DEAD_LETTER_QUEUE, DeclarationConflictError, ExchangeTable
from .store import Store, StoredMessage, StoredResult

__all__ = ["HubState"]

_log = structlog.get_logger("celeriac.hub")

#: How many completed ids are remembered to drop duplicate publishes without a store lookup.
RECENT_DONE_LIMIT: Final = 100_000
#: How many distrusted identities are remembered.
DISTRUST_LIMIT: Final = 10_000
HEARTBEAT_MISSES: Final = 3
#: Results hub-made (expired, rejected) have msgpack bodies, whatever the client accepts.
HUB_CONTENT_TYPE: Final = "application/x-msgpack"

BINDINGS_META_KEY: Final = "bindings"
#: Event topics for task outcomes (Celery's event names); the payload is the DONE header.
_TASK_EVENTS: Final = {
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


#: Commands a peer the hub does not know may send (others get ``ERR hello``).
_ANONYMOUS: Final = frozenset({p.Hello, p.Declare, p.Publish, p.Wait, p.Stat, p.Bye, p.Ping})
#: Commands only the hub sends: a peer sending one is confused and distrusted.
_HUB_ONLY: Final = (p.Welcome, p.Confirm, p.Nack, p.Deliver, p.Result, p.Reply, p.Error)


class _PeerFault(Exception):
    """A well-formed message the hub still cannot accept (an unsound declaration...)."""


@dataclass(slots=True)
class _Msg:
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


class _ReadyQueue:
    """The ready messages of one queue: FIFO, or highest priority first (FIFO within one)."""

    __slots__ = ("_fifo", "_heap", "max_priority", "name")

    def __init__(self, name: str, max_priority: int | None = None) -> None:
        self.name = name
        self.max_priority = max_priority
        self._fifo: deque[str] = deque()
        self._heap: list[tuple[int, int, str]] = []

    def push(self, msg: _Msg, *, front: bool = False) -> None:
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
class _Peer:
    identity: bytes
    role: str
    node: str
    last_seen: float
    queues: list[str] = field(default_factory=list)
    credit: int = 0
    inflight: set[str] = field(default_factory=set)
    rr: int = 0
    fail_on_lost: bool = False  # HELLO "on_lost": "fail" (task_reject_on_worker_lost=False)


class HubState:
    """Queues, credits, deliveries, results and peers; see the module docstring."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        hub_id: str,
        heartbeat: float = 2.0,
        result_expires: float | None = 86400.0,
        max_deliveries: int = 5,
    ) -> None:
        self.store = store
        self.clock = clock
        self.hub_id = hub_id
        self.heartbeat = heartbeat
        self.result_expires = result_expires
        #: Worker losses a message survives; at this many it goes to :data:`POISON_QUEUE`.
        self.max_deliveries = max(1, int(max_deliveries))
        self._dead_letters: deque[dict[str, Any]] = deque(maxlen=DEAD_LETTERS_SHOWN)
        self._reprobes: list[float] = []
        self.table = ExchangeTable()
        self.outbox: list[list[bytes]] = []
        #: Events for the PUB socket: ``[topic, msgpack header]`` (Celery's event names).
        self.events: list[list[bytes]] = []
        self._messages: dict[str, _Msg] = {}
        self._ready: dict[str, _ReadyQueue] = {}
        self._consumers: dict[str, list[bytes]] = {}
        self._rr: dict[str, int] = {}
        self._delayed: list[tuple[float, int, str]] = []
        self._peers: dict[bytes, _Peer] = {}
        self._waiters: dict[str, set[bytes]] = {}
        self._recent_done: OrderedDict[str, None] = OrderedDict()
        self._distrusted: OrderedDict[bytes, None] = OrderedDict()
        self._seq = itertools.count(1)
        self._confirms: dict[bytes, list[str]] = {}
        self._next_purge = 0.0
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "published",
                "duplicates",
                "delivered",
                "redelivered",
                "acked",
                "results_stored",
                "results_pushed",
                "expired",
                "rejected",
                "unroutable",
                "bad_frames",
                "peers_lost",
                "dead_lettered",
                "lost_failed",
                "internal_errors",
            ),
            0,
        )
        self._dispatch: dict[type, Callable[[_Peer | None, bytes, Any], None]] = {
            p.Hello: self._on_hello,
            p.Declare: self._on_declare,
            p.Publish: self._on_publish,
            p.Done: self._on_done,
            p.Credit: self._on_credit,
            p.Start: self._on_start,
            p.Reject: self._on_reject,
            p.Consume: self._on_consume,
            p.Wait: self._on_wait,
            p.Stat: self._on_stat,
            p.Forget: self._on_forget,
            p.Ping: self._on_ping,
            p.Pong: self._on_pong,
            p.Bye: self._on_bye,
            **dict.fromkeys(_HUB_ONLY, self._on_hub_only),
        }

    # -- start-up --------------------------------------------------------------------------------

    def restore(self) -> int:
        """Load the stored messages (after a restart); return how many."""
        snapshot = self.store.get_meta(BINDINGS_META_KEY)
        if snapshot is not None:
            self.table = ExchangeTable.from_snapshot(msgpack.unpackb(snapshot, raw=False))
        now = self.clock.time()
        count = 0
        for row in self.store.messages():
            task = p.decode_task(row.header, row.body)
            msg = _Msg(row.id, row.queue, row.priority, row.eta, task.expires, row.seq, task)
            msg.copy = task.id != row.id
            self._messages[row.id] = msg
            self._enqueue(msg, now)
            count += 1
        if count:
            self._seq = itertools.count(max(m.seq for m in self._messages.values()) + 1)
        return count

    # -- input -------------------------------------------------------------------------------------

    def handle(self, identity: bytes, frames: list[bytes]) -> None:
        """Process one message from ``identity``; never raises for anything the peer sent."""
        if identity in self._distrusted:
            return
        try:
            msg = p.decode(frames)
        except FrameError as exc:
            self._distrust(identity, str(exc))
            return
        peer = self._peers.get(identity)
        if peer is not None:
            peer.last_seen = self.clock.monotonic()
        elif type(msg) not in _ANONYMOUS:
            # The peer knew an earlier hub (we restarted): ask it to introduce itself again.
            self._send(identity, p.Error("hello", hub=self.hub_id))
        try:
            self._dispatch[type(msg)](peer, identity, msg)
        except _PeerFault as exc:
            self._distrust(identity, f"{msg.COMMAND.decode()}: {exc}")
        except Exception as exc:  # a bug in the hub's own handling: ours, not the peer's
            self.counters["internal_errors"] += 1
            _log.exception(
                "hub_internal_error",
                command=msg.COMMAND.decode(),
                peer=identity[:64],
                error=f"{type(exc).__name__}: {exc}",
            )

    def tick(self) -> None:
        """Time-driven work: due delayed messages, silent peers, expired results."""
        now = self.clock.time()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, mid = heapq.heappop(self._delayed)
            msg = self._messages.get(mid)
            if msg is not None and msg.holder is None:
                msg.eta = None
                self._make_ready(msg)
        mono = self.clock.monotonic()
        if self._reprobes and self._reprobes[0] <= mono:
            self._reprobes = [t for t in self._reprobes if t > mono]
            self._ping_workers()
        limit = self.heartbeat * HEARTBEAT_MISSES
        for peer in [q for q in self._peers.values() if mono - q.last_seen > limit]:
            self._drop_peer(peer, f"missed heartbeats for {mono - peer.last_seen:.1f}s")
        if now >= self._next_purge:
            self._next_purge = now + 60.0
            purged = self.store.purge_results(now)
            if purged:
                _log.info("results_expired", count=purged)
        self._flush_confirms()

    def next_deadline(self) -> float | None:
        """Epoch time of the next delayed message, if any (the server sleeps until then)."""
        return self._delayed[0][0] if self._delayed else None

    def peer_unreachable(self, identity: bytes) -> None:
        """The server could not route to ``identity``: its connection is gone."""
        peer = self._peers.get(identity)
        if peer is not None:
            self._drop_peer(peer, "connection lost")
        for ids in self._waiters.values():
            ids.discard(identity)

    def probe_peers(self) -> None:
        """A connection closed somewhere: ping the workers so the dead one shows itself.

        And again :data:`REPROBE_AFTER` seconds later (from :meth:`tick`): the first ping may
        still be accepted for a peer whose connection is being torn down.
        """
        self._ping_workers()
        now = self.clock.monotonic()
        self._reprobes = [now + delay for delay in REPROBE_AFTER]

    def _ping_workers(self) -> None:
        for peer in self._peers.values():
            if peer.role == "worker":
                self._send(peer.identity, p.Ping(hub=self.hub_id))

    # -- commands ----------------------------------------------------------------------------------

    def _on_hello(self, peer: _Peer | None, identity: bytes, msg: p.Hello) -> None:
        if peer is None:
            peer = _Peer(identity, msg.role, msg.node, self.clock.monotonic())
            self._peers[identity] = peer
        peer.role = msg.role
        peer.fail_on_lost = msg.on_lost == "fail"
        if msg.declare is not None:
            self._declare(identity, msg.declare)
        peer.credit = msg.credit
        for mid in msg.inflight:
            held = self._messages.get(mid)
            if held is not None and held.holder is None:
                held.holder = identity
                peer.inflight.add(mid)
        self._set_queues(peer, list(msg.queues))
        _log.info(
            "peer_joined", node=peer.node, role=peer.role, queues=peer.queues, credit=peer.credit
        )
        if peer.role == "worker":
            self._event(b"worker-online", p.WorkerEvent(peer.node, tuple(peer.queues)))
        self._send(identity, p.Welcome(self.hub_id, self.heartbeat))
        self._pump_peer(peer)

    def _on_declare(self, peer: _Peer | None, identity: bytes, msg: p.Declare) -> None:
        self._declare(identity, msg)

    def _declare(self, identity: bytes, declared: p.Declare) -> bool:
        """Apply exchange/queue declarations; a conflict is refused with a reason (not a crash,
        and not distrust: the peer is well-formed, its configuration disagrees with others').
        An unsound declaration (binding the default exchange...) is the peer's fault."""
        exchanges: list[tuple[str, str]] = [(x.name, x.type) for x in declared.exchanges]
        queues = [
            (q.name, q.max_priority, [(b.exchange, b.routing_key) for b in q.bindings])
            for q in declared.queues
        ]
        try:
            self.table.apply_parsed(exchanges, queues)
        except DeclarationConflictError as exc:
            _log.warning("declaration_refused", reason=str(exc))
            self._send(identity, p.Error("declaration", str(exc)[: p.MAX_TEXT]))
            return False
        except ProtocolError as exc:
            raise _PeerFault(str(exc)) from None
        for name, rq in list(self._ready.items()):
            wanted = self.table.max_priority(name)
            if wanted != rq.max_priority and not rq:
                self._ready[name] = _ReadyQueue(name, wanted)
        self.store.set_meta(BINDINGS_META_KEY, msgpack.packb(self.table.snapshot()))
        return True

    def _route(self, task: p.TaskMessage) -> list[str]:
        if task.exchange is not None:
            queues = self.table.route(task.exchange, task.routing_key or "")
        else:  # no exchange: the default exchange, keyed by the queue name
            queues = self.table.route("", task.queue)
        if not queues and task.unroutable == "dead_letter":
            if DEAD_LETTER_QUEUE not in self.table.queues():
                self.table.declare_queue(DEAD_LETTER_QUEUE)
            queues = [DEAD_LETTER_QUEUE]
        return queues

    def _on_publish(self, peer: _Peer | None, identity: bytes, msg: p.Publish) -> None:
        for task in msg.tasks:
            self._publish(identity, task)

    def _publish(self, identity: bytes, task: p.TaskMessage) -> None:
        mid = task.id
        if self._is_duplicate(mid):
            self.counters["duplicates"] += 1
            if task.reply:
                self._waiters.setdefault(mid, set()).add(identity)
        else:
            queues = self._route(task)
            if not queues:
                self.counters["unroutable"] += 1
                self._nack(identity, mid, self._unroutable_reason(task))
                return
            if task.reply:
                # Before _accept: a message already expired is answered inside it (REVOKED).
                self._waiters.setdefault(mid, set()).add(identity)
            self._accept(task, queues)
        self._confirms.setdefault(identity, []).append(mid)

    def _on_done(self, peer: _Peer | None, identity: bytes, msg: p.Done) -> None:
        credit = 0
        for result in msg.results:
            self._done(result)
            credit += result.credit
        if peer is not None:
            peer.credit += credit
            self._pump_peer(peer)

    def _done(self, result: p.ResultMessage) -> None:
        tag = result.delivery_tag  # a fanout copy has its own delivery tag
        held = self._messages.pop(tag, None)
        if held is not None:
            self.store.remove_message(tag)
            self._release(held)
            self.counters["acked"] += 1
        self._remember_done(result.id)
        self.events.append([_TASK_EVENTS.get(result.state, b"task-done"), p.result_header(result)])
        if result.store:
            self._store_result(result)
        elif result.id in self._waiters:
            self._push_result(result)

    def _on_start(self, peer: _Peer | None, identity: bytes, msg: p.Start) -> None:
        for ref in msg.started:
            held = self._messages.get(ref.delivery_tag)
            if held is not None:
                held.started = True
                self.events.append([b"task-started", p.started_event(ref)])

    def _on_credit(self, peer: _Peer | None, identity: bytes, msg: p.Credit) -> None:
        if peer is not None:
            peer.credit += msg.credit
            self._pump_peer(peer)

    def _on_reject(self, peer: _Peer | None, identity: bytes, msg: p.Reject) -> None:
        for rejection in msg.rejections:
            self._reject(rejection)
        if peer is not None:
            peer.credit += sum(r.credit for r in msg.rejections)
            self._pump_peer(peer)

    def _reject(self, rejection: p.Rejection) -> None:
        held = self._messages.get(rejection.delivery_tag)
        if held is None:
            return
        if rejection.requeue:
            self._release(held)
            self._requeue(held)
        else:
            reason = rejection.reason or "rejected by the worker"
            self._finish_by_hub(held, states.REJECTED, "Reject", reason)

    def _on_consume(self, peer: _Peer | None, identity: bytes, msg: p.Consume) -> None:
        if peer is not None:
            self._set_queues(peer, list(msg.queues))
            self._pump_peer(peer)

    def _on_wait(self, peer: _Peer | None, identity: bytes, msg: p.Wait) -> None:
        for mid in msg.ids:
            stored = self.store.get_result(mid)
            if stored is not None:
                result = p.decode_result(stored.header, stored.body)
                self._send(identity, p.Result((result,)))
            else:
                self._waiters.setdefault(mid, set()).add(identity)

    def _on_stat(self, peer: _Peer | None, identity: bytes, msg: p.Stat) -> None:
        mid = msg.id
        stored = self.store.get_result(mid)
        if stored is not None:
            state = stored.state
        else:
            held = self._messages.get(mid)
            if held is None or held.holder is None:
                state = states.PENDING
            else:
                state = states.STARTED if held.started else states.RECEIVED
        self._send(identity, p.Reply(mid, state, msg.rid))

    def _on_forget(self, peer: _Peer | None, identity: bytes, msg: p.Forget) -> None:
        self.store.forget_result(msg.id)

    def _on_ping(self, peer: _Peer | None, identity: bytes, msg: p.Ping) -> None:
        self._send(identity, p.Pong(self.hub_id, known=peer is not None))

    def _on_pong(self, peer: _Peer | None, identity: bytes, msg: p.Pong) -> None:
        """A worker answered our probe: it is alive (last_seen was updated)."""

    def _on_bye(self, peer: _Peer | None, identity: bytes, msg: p.Bye) -> None:
        if peer is not None:
            self._drop_peer(peer, "said goodbye", log=False)

    def _on_hub_only(self, peer: _Peer | None, identity: bytes, msg: Any) -> None:
        """A command only the hub sends (WELCOME, TASK, RES...): the peer is confused."""
        raise _PeerFault("a command only the hub sends")

    # -- messages ----------------------------------------------------------------------------------

    def _accept(self, task: p.TaskMessage, queues: list[str]) -> None:
        now = self.clock.time()
        priority = task.priority or 0
        header = p.task_header(task)
        for i, queue in enumerate(queues):
            # A message routed to several queues (fanout) gets one stored copy per queue.
            qid = task.id if i == 0 else f"{task.id}:{queue}"
            msg = _Msg(qid, queue, priority, task.eta, task.expires, next(self._seq), task)
            msg.copy = i > 0
            self._messages[qid] = msg
            self.store.add_message(
                StoredMessage(qid, queue, priority, task.eta, msg.seq, header, task.body)
            )
            self._enqueue(msg, now)
        self.counters["published"] += 1

    def _enqueue(self, msg: _Msg, now: float) -> None:
        if msg.eta is not None and msg.eta > now:
            heapq.heappush(self._delayed, (msg.eta, msg.seq, msg.id))
        else:
            self._make_ready(msg)

    def _make_ready(self, msg: _Msg, *, front: bool = False) -> None:
        rq = self._ready.get(msg.queue)
        if rq is None:
            rq = self._ready[msg.queue] = _ReadyQueue(msg.queue, self.table.max_priority(msg.queue))
        if not msg.queued:
            msg.queued = True
            rq.push(msg, front=front)
        self._pump_queue(msg.queue)

    def _requeue(self, msg: _Msg) -> None:
        self.counters["redelivered"] += 1
        self._make_ready(msg, front=True)

    def _release(self, msg: _Msg) -> None:
        if msg.holder is not None:
            holder = self._peers.get(msg.holder)
            if holder is not None:
                holder.inflight.discard(msg.id)
            msg.holder = None

    def _is_duplicate(self, mid: str) -> bool:
        return (
            mid in self._messages
            or mid in self._recent_done
            or self.store.get_result(mid) is not None
        )

    def _remember_done(self, mid: str) -> None:
        self._recent_done[mid] = None
        if len(self._recent_done) > RECENT_DONE_LIMIT:
            self._recent_done.popitem(last=False)

    # -- dispatch ----------------------------------------------------------------------------------

    def _pump_queue(self, queue: str) -> None:
        consumers = self._consumers.get(queue)
        rq = self._ready.get(queue)
        if not consumers or not rq:
            return
        n = len(consumers)
        start = self._rr.get(queue, 0)
        idle = 0
        i = start
        while rq and idle < n:
            peer = self._peers.get(consumers[i % n])
            i += 1
            if peer is None or peer.credit <= 0:
                idle += 1
                continue
            idle = 0
            if not self._deliver_next(rq, peer):
                break
        self._rr[queue] = i % n

    def _pump_peer(self, peer: _Peer) -> None:
        queues = peer.queues
        if not queues or peer.credit <= 0:
            return
        n = len(queues)
        for k in range(n):
            rq = self._ready.get(queues[(peer.rr + k) % n])
            while rq and peer.credit > 0:
                if not self._deliver_next(rq, peer):
                    break
            if peer.credit <= 0:
                break
        peer.rr = (peer.rr + 1) % n

    def _deliver_next(self, rq: _ReadyQueue, peer: _Peer) -> bool:
        """Send the next live message of ``rq`` to ``peer``; False if the queue ran dry."""
        now = self.clock.time()
        while True:
            mid = rq.pop()
            if mid is None:
                return False
            msg = self._messages.get(mid)
            if msg is None or not msg.queued:
                continue
            msg.queued = False
            if msg.holder is not None:  # claimed by a worker's HELLO after a hub restart
                continue
            if msg.expires is not None and now >= msg.expires:
                self.counters["expired"] += 1
                self._finish_by_hub(msg, states.REVOKED, "TaskRevokedError", "expired")
                continue
            msg.deliveries += 1
            msg.holder = peer.identity
            peer.inflight.add(mid)
            peer.credit -= 1
            self.counters["delivered"] += 1
            delivery = p.Delivery(msg.task, msg.queue, msg.deliveries, msg.id if msg.copy else None)
            self._send(peer.identity, p.Deliver((delivery,)))
            return True

    def _set_queues(self, peer: _Peer, queues: list[str]) -> None:
        for q in peer.queues:
            consumers = self._consumers.get(q)
            if consumers and peer.identity in consumers:
                consumers.remove(peer.identity)
        peer.queues = list(dict.fromkeys(queues))
        for q in peer.queues:
            self._consumers.setdefault(q, []).append(peer.identity)
            if q not in self._ready:
                self._ready[q] = _ReadyQueue(q, self.table.max_priority(q))

    # -- results -----------------------------------------------------------------------------------

    def _store_result(self, result: p.ResultMessage) -> None:
        expires = None if self.result_expires is None else self.clock.time() + self.result_expires
        stored = StoredResult(result.id, result.state, p.result_header(result), result.body)
        self.store.put_result(stored, expires)
        self.counters["results_stored"] += 1
        self._push_result(result)

    def _push_result(self, result: p.ResultMessage) -> None:
        waiters = self._waiters.pop(result.id, ())
        if waiters:
            frames = p.encode(p.Result((result,)))
            for waiter in waiters:
                self.outbox.append([waiter, *frames])
                self.counters["results_pushed"] += 1

    def _hub_result(self, mid: str, state: str, exc_type: str, reason: str) -> p.ResultMessage:
        """A result the hub makes (expired, rejected, lost): a msgpack FailureInfo body."""
        info = p.FailureInfo(exc_type, "celeriac.exceptions", (reason,))
        body = msgpack.packb(p.failure_map(info))
        return p.ResultMessage(mid, state, body, HUB_CONTENT_TYPE, hub=True)

    def _finish_by_hub(self, msg: _Msg, state: str, exc_type: str, reason: str) -> None:
        """End a message without a worker (expired, rejected): remove it, store why."""
        self._messages.pop(msg.id, None)
        self.store.remove_message(msg.id)
        self._release(msg)
        self._remember_done(msg.id)
        if state == states.REJECTED:
            self.counters["rejected"] += 1
        result = self._hub_result(msg.id, state, exc_type, reason)
        self.events.append([_TASK_EVENTS.get(state, b"task-done"), p.result_header(result)])
        self._store_result(result)

    # -- peers -------------------------------------------------------------------------------------

    def _drop_peer(self, peer: _Peer, reason: str, *, log: bool = True) -> None:
        self._peers.pop(peer.identity, None)
        if peer.role == "worker":
            self._event(b"worker-offline", p.WorkerEvent(peer.node, reason=reason[: p.MAX_TEXT]))
        self._set_queues(peer, [])
        held = [self._messages[m] for m in peer.inflight if m in self._messages]
        # Pushed to the front one by one: newest first, so the oldest ends up at the head.
        held.sort(key=lambda m: m.seq, reverse=True)
        peer.inflight.clear()
        if log or held:
            self.counters["peers_lost"] += 1 if log else 0
            _log.warning(
                "peer_lost" if log else "peer_left",
                node=peer.node,
                reason=reason,
                requeued=len(held) if not peer.fail_on_lost or not log else 0,
                **({"failed": len(held)} if peer.fail_on_lost and log and held else {}),
            )
        for msg in held:
            msg.holder = None
            if not log:  # BYE: handed back on purpose (cold shutdown), not a loss
                self._requeue(msg)
                continue
            msg.lost += 1
            if msg.lost >= self.max_deliveries:
                self._dead_letter(msg, peer.node)
            elif peer.fail_on_lost:
                self.counters["lost_failed"] += 1
                self._finish_by_hub(
                    msg,
                    states.FAILURE,
                    "WorkerLostError",
                    f"worker {peer.node} was lost ({reason}) while running the task; not "
                    "redelivered because task_reject_on_worker_lost is False",
                )
            else:
                self._requeue(msg)

    def _dead_letter(self, msg: _Msg, node: str) -> None:
        """A poison message: keep it in :data:`POISON_QUEUE`, store a WorkerLostError for it."""
        each = "each time" if msg.lost >= msg.deliveries else f"the last {msg.lost} times"
        reason = (
            f"delivered {msg.deliveries} times; {each} its worker was lost (last: {node}); "
            f"kept in the {POISON_QUEUE!r} queue"
        )
        letter = p.DeadLetter(reason, msg.queue, self.clock.time())
        msg.task = dataclasses.replace(msg.task, dead_letter=letter)
        self.store.remove_message(msg.id)
        msg.queue, msg.eta = POISON_QUEUE, None
        header = p.task_header(msg.task)
        self.store.add_message(
            StoredMessage(msg.id, POISON_QUEUE, msg.priority, None, msg.seq, header, msg.task.body)
        )
        if POISON_QUEUE not in self.table.queues():
            self.table.declare_queue(POISON_QUEUE)
        self.counters["dead_lettered"] += 1
        self._dead_letters.append(
            {"id": msg.id, "task": msg.task.task, "reason": reason, "at": self.clock.time()}
        )
        _log.error("message_dead_lettered", id=msg.id, task=msg.task.task, reason=reason)
        self._remember_done(msg.id)
        self._store_result(self._hub_result(msg.id, states.FAILURE, "WorkerLostError", reason))
        self._make_ready(msg)  # delivered only to a consumer of the dead-letter queue

    def _distrust(self, identity: bytes, reason: str) -> None:
        self.counters["bad_frames"] += 1
        _log.warning("bad_frame_dropped", peer=identity[:64], reason=reason[:300])
        self._distrusted[identity] = None
        if len(self._distrusted) > DISTRUST_LIMIT:
            self._distrusted.popitem(last=False)
        peer = self._peers.get(identity)
        if peer is not None:
            self._drop_peer(peer, f"sent a malformed message: {reason[:200]}")
        self._send(identity, p.Error("distrusted", reason[:300]))

    # -- output ------------------------------------------------------------------------------------

    def _event(self, topic: bytes, event: p.WorkerEvent) -> None:
        self.events.append([topic, p.encode_event(event)])

    def _send(self, identity: bytes, message: p.Message) -> None:
        frames = p.encode(message)
        frames.insert(0, identity)
        self.outbox.append(frames)

    def _nack(self, identity: bytes, mid: str, reason: str) -> None:
        _log.warning("publish_refused", id=mid, reason=reason)
        self._send(identity, p.Nack((p.Refusal(mid, reason[: p.MAX_TEXT]),)))

    def _flush_confirms(self) -> None:
        """One ``CONF`` per publisher per loop turn, listing every id made durable."""
        for identity, ids in self._confirms.items():
            self._send(identity, p.Confirm(tuple(ids)))
        self._confirms.clear()

    def _unroutable_reason(self, task: p.TaskMessage) -> str:
        key = task.routing_key if task.routing_key is not None else task.queue
        return (
            f"unroutable: no queue is bound to exchange {task.exchange or ''!r} with routing "
            f"key {key!r} (declare the queue in task_queues "
            "or let task_create_missing_queues create it; task_unroutable='dead_letter' keeps "
            f"such messages in {DEAD_LETTER_QUEUE!r})"
        )

    # -- introspection -----------------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """Counters and sizes for ``inspect stats`` and logs."""
        return {
            **self.counters,
            "messages": len(self._messages),
            "delayed": len(self._delayed),
            "queues": {q: len(rq) for q, rq in self._ready.items()},
            "peers": {
                p.node: {"role": p.role, "credit": p.credit, "inflight": len(p.inflight)}
                for p in self._peers.values()
            },
            "waiters": len(self._waiters),
            "max_deliveries": self.max_deliveries,
            "dead_letters": list(self._dead_letters),
        }
