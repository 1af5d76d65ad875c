"""Queues, credit and dispatch: declarations and routing, accepting publishes, ready queues,
delayed messages, and delivering within each worker's credit, round robin."""

from __future__ import annotations

import heapq

import msgpack

from celeriac import states
from celeriac._log import get_logger
from celeriac.exceptions import ProtocolError

from .. import protocol as p
from ..declarations import DeclarationConflictError
from ..routing import DEAD_LETTER_QUEUE
from .bodies import Bodies
from .canvas import CanvasRevokes
from .limits import MAX_CREDIT, too_big
from .model import (
    BINDINGS_META_KEY,
    Msg,
    Peer,
    PeerFault,
    ReadyQueue,
)
from .storage import STORAGE_ERRORS

_log = get_logger("celeriac.hub")


class Queues(CanvasRevokes, Bodies):
    """Declarations, routing, ready queues, credit and dispatch."""

    #: Deliveries outstanding at once to one peer (``hub_max_credit_per_peer``).
    max_credit_per_peer: int = MAX_CREDIT
    #: While a ``PUB`` is taken in: the queues to pump once it is (None: pump at once).
    _pump_later: dict[str, None] | None = None

    def _on_declare(self, peer: Peer | None, identity: bytes, msg: p.Declare) -> None:
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
            raise PeerFault(str(exc)) from None
        for name, rq in list(self._ready.items()):
            wanted = self.table.max_priority(name)
            if wanted != rq.max_priority and not rq:
                self._ready[name] = ReadyQueue(name, wanted)
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

    def _on_publish(self, peer: Peer | None, identity: bytes, msg: p.Publish) -> None:
        stored: set[str] | None = None
        routes: dict[tuple[str | None, str | None, str, str | None], list[str]] = {}
        # The message's tasks are queued first and their queues pumped once at the end (in
        # the same order), not one pump per task.
        pump: dict[str, None] = {}
        self._pump_later = pump
        try:
            for i, task in enumerate(msg.tasks):
                try:
                    if stored is None:  # one store read for the message's duplicate checks
                        # (queued ids too: _is_duplicate finds them first, and a lookup in the
                        # table of queued messages, as large as the backlog, costs more here)
                        stored = self.store.results_among([t.id for t in msg.tasks if t.id])
                    self._publish(identity, task, stored, routes)
                except STORAGE_ERRORS:  # the store went away: this task and the rest are refused
                    rest = [t.id for t in msg.tasks[i:] if t.id]
                    self._confirms.setdefault(identity, []).extend(rest)  # turned into NACKs
                    raise
        finally:
            self._pump_later = None
            for queue in pump:
                self._pump_queue(queue)

    def _publish(
        self,
        identity: bytes,
        task: p.TaskMessage,
        stored: set[str],
        routes: dict[tuple[str | None, str | None, str, str | None], list[str]],
    ) -> None:
        """Take one task in (``stored``: the ids among its message's with a stored result;
        ``routes``: the message's routes so far, by what decides them: a batch's tasks mostly
        share one)."""
        mid = task.id
        if not mid:  # refused before anything is stored: an empty id is nobody's task
            self._nack(identity, mid, "a task id must not be empty")
            return
        if self.storage_error is not None:  # the disk is full: nothing new is taken in
            self._nack(identity, mid, self.storage_error)
            return
        if len(task.body) > self.max_message_size:
            self._nack(identity, mid, too_big(len(task.body), self.max_message_size))
            return
        if self._is_duplicate(mid, stored):
            self.counters["duplicates"] += 1
            if task.reply:
                self._waiters.setdefault(mid, set()).add(identity)
        else:
            how = (task.exchange, task.routing_key, task.queue, task.unroutable)
            queues = routes.get(how)
            if queues is None:
                queues = routes[how] = self._route(task)
            if not queues:
                self.counters["unroutable"] += 1
                self._nack(identity, mid, self._unroutable_reason(task))
                return
            if task.reply:
                # Before _accept: a message already expired is answered inside it (REVOKED).
                self._waiters.setdefault(mid, set()).add(identity)
            if not self._refuse_revoked(task):
                self._accept(task, queues)
        self._confirms.setdefault(identity, []).append(mid)

    def _accept(self, task: p.TaskMessage, queues: list[str]) -> None:
        now = self.clock.time()
        priority = task.priority or 0
        header = p.task_header(task)
        for i, queue in enumerate(queues):
            # A message routed to several queues (fanout) gets one stored copy per queue.
            qid = task.id if i == 0 else f"{task.id}:{queue}"
            msg = Msg(qid, queue, priority, task.eta, task.expires, next(self._seq), task)
            msg.copy = i > 0
            self._messages[qid] = msg
            self.store.add_message_fields(
                qid, queue, priority, task.eta, msg.seq, header, task.body
            )
            self._keep_body(msg)
            self._enqueue(msg, now)
        self.counters["published"] += 1

    def _enqueue(self, msg: Msg, now: float) -> None:
        if msg.task.chord_size is not None and self._chord_holds(msg):
            return
        if msg.eta is not None and msg.eta > now:
            heapq.heappush(self._delayed, (msg.eta, msg.seq, msg.id))
        else:
            self._make_ready(msg)

    def _make_ready(self, msg: Msg, *, front: bool = False) -> None:
        rq = self._ready.get(msg.queue)
        if rq is None:
            rq = self._ready[msg.queue] = ReadyQueue(msg.queue, self.table.max_priority(msg.queue))
        if not msg.queued:
            msg.queued = True
            rq.push(msg, front=front)
        later = self._pump_later
        if later is None:
            self._pump_queue(msg.queue)
        else:
            later[msg.queue] = None

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

    def _pump_peer(self, peer: Peer) -> None:
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

    def _deliver_next(self, rq: ReadyQueue, peer: Peer) -> bool:
        """Send the next live message of ``rq`` to ``peer``; False if the queue ran dry."""
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
            expires = msg.expires
            if (
                expires is not None
                and self.clock.time() >= expires
                and not self._expires_at_worker(msg)
            ):
                self.counters["expired"] += 1
                self._finish_by_hub(msg, states.REVOKED, "TaskRevokedError", "expired")
                continue
            try:
                task = msg.task if not msg.light else self._delivery_task(msg)
            except STORAGE_ERRORS:  # the store is away: the message waits for it, queued
                msg.queued = True
                rq.push(msg, front=True)
                raise
            if task is None:
                reason = "its body is missing from the hub's store"
                self._finish_by_hub(msg, states.REJECTED, "Reject", reason)
                continue
            msg.deliveries += 1
            msg.delivered_at = self.clock.monotonic()
            msg.holder = peer.identity
            peer.inflight.add(mid)
            peer.credit -= 1
            self.counters["delivered"] += 1
            frames = p.delivery_frames(
                task, msg.queue, msg.deliveries, msg.id if msg.copy else None
            )
            frames.insert(0, peer.identity)
            self.outbox.append(frames)  # merged with the turn's others to the peer when sent
            return True

    def _set_queues(self, peer: Peer, queues: list[str]) -> None:
        for q in peer.queues:
            consumers = self._consumers.get(q)
            if consumers and peer.identity in consumers:
                consumers.remove(peer.identity)
        peer.queues = list(dict.fromkeys(queues))
        for q in peer.queues:
            self._consumers.setdefault(q, []).append(peer.identity)
            if q not in self._ready:
                self._ready[q] = ReadyQueue(q, self.table.max_priority(q))

    def _cap(self, peer: Peer) -> None:
        """Hold ``peer``'s deliveries outstanding (held and still to send) within
        ``hub_max_credit_per_peer``: what it asked above that is dropped, logged once."""
        room = self.max_credit_per_peer - len(peer.inflight)
        if peer.credit > room:
            peer.credit = max(room, 0)
            self.counters["credit_capped"] = self.counters.get("credit_capped", 0) + 1
            if not peer.capped:
                peer.capped = True
                _log.warning(
                    "credit_capped",
                    peer=peer.node,
                    limit=self.max_credit_per_peer,
                    setting="hub_max_credit_per_peer",
                )

    def _on_credit(self, peer: Peer | None, identity: bytes, msg: p.Credit) -> None:
        if peer is not None:
            peer.credit += msg.credit
            self._cap(peer)
            self._pump_peer(peer)

    def _on_consume(self, peer: Peer | None, identity: bytes, msg: p.Consume) -> None:
        if peer is not None:
            self._set_queues(peer, list(msg.queues))
            self._pump_peer(peer)
