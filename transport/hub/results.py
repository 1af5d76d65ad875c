"""Results and waiters: storing outcomes, pushing them to waiting clients, ending a message
with a result the hub makes (expired, rejected, lost), duplicates."""

from __future__ import annotations

import msgpack

from celeriac import states
from celeriac._log import get_logger

from .. import protocol as p
from ..store import StoredResult
from .base import HubBase
from .model import (
    HUB_CONTENT_TYPE,
    TASK_EVENTS,
    Msg,
    Peer,
)
from .waits import Waits

_log = get_logger("celeriac.hub")


class Results(Waits, HubBase):
    """Results, waiters and the end of a message."""

    def _result_expiry(self, state: str | None) -> float | None:
        """When a result in ``state`` expires (epoch seconds; None: never): FAILURE follows
        ``result_failure_expires`` when set, every other state ``result_expires``."""
        keep = self.result_expires
        if state == states.FAILURE and self.result_failure_expires is not None:
            keep = self.result_failure_expires
        return None if keep is None else self.clock.time() + keep

    def _store_result(self, result: p.ResultMessage) -> None:
        expires = self._result_expiry(result.state)
        stored = StoredResult(result.id, result.state, p.result_header(result), result.body)
        self.store.put_result(stored, expires)
        self.counters["results_stored"] += 1
        self._push_result(result)

    def _push_result(self, result: p.ResultMessage) -> None:
        waiters = self._waiters.pop(result.id, None)
        if waiters:
            self._waits_done(waiters)
            frames = p.result_frames(result)
            hold = self.confirm_hold
            for waiter in waiters:
                if hold:
                    hold.answered(waiter, result.id)  # a RES confirms the publish it answers
                self.outbox.append([waiter, *frames])
                self.counters["results_pushed"] += 1

    def _hub_result(self, mid: str, state: str, exc_type: str, reason: str) -> p.ResultMessage:
        """A result the hub makes (expired, rejected, lost): a msgpack FailureInfo body."""
        info = p.FailureInfo(exc_type, "celeriac.exceptions", (reason,))
        body = msgpack.packb(p.failure_map(info))
        return p.ResultMessage(mid, state, body, HUB_CONTENT_TYPE, hub=True)

    def _is_revoked(self, mid: str) -> bool:
        """True if ``mid`` was revoked (see :mod:`.revocations`)."""
        return False

    def _chord_member_ended(self, msg: Msg) -> None:
        """Count a chord header task that ended (see :mod:`.chords`)."""

    def _finish_by_hub(self, msg: Msg, state: str, exc_type: str, reason: str) -> None:
        """End a message without a worker (expired, rejected): remove it, store why."""
        self._messages.pop(msg.id, None)
        self.store.remove_message(msg.id)
        self._release(msg)
        self._remember_done(msg.id)
        self._chord_member_ended(msg)
        if state == states.REJECTED:
            self.counters["rejected"] += 1
        result = self._hub_result(msg.id, state, exc_type, reason)
        topic = TASK_EVENTS.get(state, b"task-done")
        self._task_event(topic, result.id, lambda: p.result_header(result))
        self._store_result(result)

    def _release(self, msg: Msg) -> None:
        if msg.holder is not None:
            holder = self._peers.get(msg.holder)
            if holder is not None:
                holder.inflight.discard(msg.id)
            msg.holder = None

    def _is_duplicate(self, mid: str, stored: set[str]) -> bool:
        """Whether ``mid`` is queued, just done, or has a result (``stored``: the ids of its
        publish message found with one, read in one go by ``Store.results_among``)."""
        return mid in self._messages or mid in self._recent_done or mid in stored

    def _remember_done(self, mid: str) -> None:
        self._recent_done.add(mid)

    def _on_wait(self, peer: Peer | None, identity: bytes, msg: p.Wait) -> None:
        for mid in msg.ids:
            stored = self.store.get_result(mid)
            if stored is not None:
                result = p.decode_result(stored.header, stored.body)
                if self.confirm_hold:
                    self.confirm_hold.answered(identity, mid)
                self._send(identity, p.Result((result,)))
            elif self._wait_allowed(identity, mid):
                self._waiters.setdefault(mid, set()).add(identity)

    def _on_stat(self, peer: Peer | None, identity: bytes, msg: p.Stat) -> None:
        mid = msg.id
        stored = self.store.get_result(mid)
        if stored is not None:
            self._send(identity, p.Reply(mid, stored.state, msg.rid))
            return
        held = self._messages.get(mid)
        if held is None:
            state = states.REVOKED if self._is_revoked(mid) else states.PENDING
            self._send(identity, p.Reply(mid, state, msg.rid))
            return
        holder = self._peers.get(held.holder) if held.holder is not None else None
        if held.holder is None:
            state = states.RETRY if held.task.retries else states.PENDING
        else:
            state = states.STARTED if held.started else states.RECEIVED
        consumers = self._consumers_of(held.queue)
        worker = holder.node if holder is not None else None
        self._send(identity, p.Reply(mid, state, msg.rid, held.queue, consumers, worker))

    def _consumers_of(self, queue: str) -> int:
        """How many peers could take a message of ``queue`` (STAT's answer)."""
        return len(self._consumers.get(queue, ()))

    def _on_forget(self, peer: Peer | None, identity: bytes, msg: p.Forget) -> None:
        self.store.forget_result(msg.id)
