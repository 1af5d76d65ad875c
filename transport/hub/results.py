"""Results and waiters: storing outcomes, pushing them to waiting clients, ending a message
with a result the hub makes (expired, rejected, lost), duplicates."""

from __future__ import annotations

import msgpack
import structlog

from celeriac import states

from .. import protocol as p
from ..store import StoredResult
from .base import HubBase
from .model import (
    HUB_CONTENT_TYPE,
    RECENT_DONE_LIMIT,
    TASK_EVENTS,
    Msg,
    Peer,
)

_log = structlog.get_logger("celeriac.hub")


class Results(HubBase):
    """Results, waiters and the end of a message."""

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
        self.events.append([TASK_EVENTS.get(state, b"task-done"), p.result_header(result)])
        self._store_result(result)

    def _release(self, msg: Msg) -> None:
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

    def _on_wait(self, peer: Peer | None, identity: bytes, msg: p.Wait) -> None:
        for mid in msg.ids:
            stored = self.store.get_result(mid)
            if stored is not None:
                result = p.decode_result(stored.header, stored.body)
                self._send(identity, p.Result((result,)))
            else:
                self._waiters.setdefault(mid, set()).add(identity)

    def _on_stat(self, peer: Peer | None, identity: bytes, msg: p.Stat) -> None:
        mid = msg.id
        stored = self.store.get_result(mid)
        if stored is not None:
            state = stored.state
        else:
            held = self._messages.get(mid)
            if held is None:
                state = states.REVOKED if self._is_revoked(mid) else states.PENDING
            elif held.holder is None:
                state = states.RETRY if held.task.retries else states.PENDING
            else:
                state = states.STARTED if held.started else states.RECEIVED
        self._send(identity, p.Reply(mid, state, msg.rid))

    def _on_forget(self, peer: Peer | None, identity: bytes, msg: p.Forget) -> None:
        self.store.forget_result(msg.id)
