"""A message's life after delivery: acknowledged by DONE, started, rejected or requeued, and
moved to the dead-letter queue when its workers keep being lost."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial
from operator import attrgetter

from celeriac import states
from celeriac._log import get_logger

from .. import protocol as p
from ..store import StoredMessage
from .limits import too_big
from .model import (
    POISON_QUEUE,
    TASK_EVENTS,
    Msg,
    Peer,
)
from .ownership import _Item, owned
from .retries import Retries

_log = get_logger("celeriac.hub")
#: The slots an outcome frees (summed over a DONE's outcomes in C, not a generator).
_CREDIT = attrgetter("credit")


class Lifecycle(Retries):
    """Acknowledgement, requeue, rejection and dead letters."""

    def _requeue(self, msg: Msg) -> None:
        if self._requeue_revoked(msg):  # revoked while a worker held it: it ends here
            return
        self.counters["redelivered"] += 1
        self._make_ready(msg, front=True)

    def _holder_of(self, tag: str) -> bytes | None:
        held = self._messages.get(tag)
        return None if held is None else held.holder

    def _owned(self, peer: Peer | None, items: Sequence[_Item], command: str) -> list[_Item]:
        """The items ``peer`` may act on (:mod:`.ownership`); the others are counted."""
        if peer is not None:  # the usual case first: every item is out to this very peer
            messages, me = self._messages, peer.identity
            for item in items:
                held = messages.get(item.delivery_tag)
                if held is None or held.holder != me:
                    break
            else:
                return list(items)
        accepted, refused = owned(self._peers, self._holder_of, peer, items, command)
        self.counters["refused"] += refused
        return accepted

    def _on_done(self, peer: Peer | None, identity: bytes, msg: p.Done) -> None:
        for result in self._owned(peer, msg.results, "DONE"):
            self._done(result)
        if peer is not None:  # a slot freed is the peer's credit, even for a refused outcome
            peer.credit += sum(map(_CREDIT, msg.results))
            self._cap(peer)
            self._pump_peer(peer)

    def _done(self, result: p.ResultMessage) -> None:
        if len(result.body) > self.max_message_size:  # kept: a FAILURE that says why
            reason = too_big(len(result.body), self.max_message_size)
            failure = self._hub_result(result.id, states.FAILURE, "ResultTooLarge", reason)
            result = dataclasses.replace(failure, tag=result.tag, store=result.store)
        if result.state == states.RETRY and result.retry_eta is not None:
            self._retry(result)
            return
        tag = result.delivery_tag  # a fanout copy has its own delivery tag
        held = self._messages.pop(tag, None)
        if held is not None:
            self.store.remove_message(tag)
            self._forget_body(tag)
            self._release(held)
            self.counters["acked"] += 1
            self._chord_member_ended(held)
        self._remember_done(result.id)
        if self.events_wanted or self.worker_sent:  # else _task_event would do nothing
            topic = TASK_EVENTS.get(result.state, b"task-done")
            self._task_event(topic, result.id, lambda: p.result_header(result))
        if result.store:
            self._store_result(result)
        elif result.id in self._waiters:
            self._push_result(result)

    def _on_start(self, peer: Peer | None, identity: bytes, msg: p.Start) -> None:
        for ref in self._owned(peer, msg.started, "START"):
            held = self._messages.get(ref.delivery_tag)
            if held is not None:
                held.started = True
                self._task_event(b"task-started", ref.id, partial(p.started_event, ref))

    def _on_reject(self, peer: Peer | None, identity: bytes, msg: p.Reject) -> None:
        for rejection in self._owned(peer, msg.rejections, "REJ"):
            self._reject(rejection)
        if peer is not None:
            peer.credit += sum(r.credit for r in msg.rejections)
            self._cap(peer)
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

    def _dead_letter(self, msg: Msg, node: str) -> None:
        """A poison message: keep it in :data:`POISON_QUEUE`, store a WorkerLostError for it."""
        self._chord_member_ended(msg)  # it will not run again: its chord fires its error path
        each = "each time" if msg.lost >= msg.deliveries else f"the last {msg.lost} times"
        reason = (
            f"delivered {msg.deliveries} times; {each} its worker was lost (last: {node}); "
            f"kept in the {POISON_QUEUE!r} queue"
        )
        letter = p.DeadLetter(reason, msg.queue, self.clock.time())
        body = self._body_of(msg) or b""
        msg.task = dataclasses.replace(msg.task, dead_letter=letter)
        self.store.remove_message(msg.id)
        msg.queue, msg.eta = POISON_QUEUE, None
        header = p.task_header(msg.task)
        self.store.add_message(
            StoredMessage(msg.id, POISON_QUEUE, msg.priority, None, msg.seq, header, body)
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
