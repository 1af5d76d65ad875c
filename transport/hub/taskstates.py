"""Custom task states, progress meta and extended results at the hub (issue 10).

How it works
------------
``Task.update_state(state="PROGRESS", meta={...})`` in a running task makes its worker send
``COMPAT.STATE`` (:class:`~celeriac._protocol_compat.TaskState`) for the delivery it holds.
The ownership rules of ``START`` apply (only the holder, or its node, may say it). The hub
keeps the last one per delivery in memory, beside the message it delivered:

* ``STAT`` answers the custom state while the message is out for delivery (so
  ``AsyncResult.state`` is ``PROGRESS`` in any process), and the stored result once done;
* ``COMPAT.INFO`` (``AsyncResult.info``, ``.name``, ``.args``...) answers a
  :class:`~celeriac._protocol_compat.TaskInfo`: the state, the last meta, and the request the
  hub holds (name, queue, worker, retries, the task body as sent).

The progress of a task lives exactly as long as its delivery: it is dropped when the task ends
(its result then answers) and not written to disk. That is durable enough: if the hub
restarts, a task still running reports its next progress again, and a task that is run again
starts its progress over.

``result_extended``: a worker with that setting marks each delivery (``extended``) when it
starts it; when the task ends, the hub stores its request (name, queue, worker, retries,
completion time and arguments up to :data:`~celeriac._protocol_compat.MAX_ARGS` bytes) as a
second row of the result store under :data:`EXTENDED_PREFIX` + id, with the result's expiry,
forgotten with it. Nothing is stored for tasks without the mark: the hot path pays one dict
lookup.
"""

from __future__ import annotations

import dataclasses
import functools

from celeriac import states
from celeriac._protocol_compat import MAX_ARGS

from .. import protocol as p
from ..store import StoredResult
from .lifecycle import Lifecycle
from .model import Msg, Peer

__all__ = ["EXTENDED_PREFIX", "TaskStates"]

#: Where a task's extended request is stored in the result store (beside its result).
EXTENDED_PREFIX = "celeriac.extended:"


class TaskStates(Lifecycle):
    """``COMPAT.STATE`` and ``COMPAT.INFO``; see the module docstring."""

    @functools.cached_property
    def _progress(self) -> dict[str, p.TaskState]:
        """The last custom state of each delivery that reported one, by delivery tag."""
        return {}

    @functools.cached_property
    def _extended(self) -> set[str]:
        """Deliveries whose request is kept beside their result (``result_extended``)."""
        return set()

    def _on_task_state(self, peer: Peer | None, identity: bytes, msg: p.TaskState) -> None:
        for ref in self._owned(peer, (p.TaskRef(msg.id, msg.tag),), "COMPAT.STATE"):
            tag = ref.delivery_tag
            if tag not in self._messages:
                continue
            if msg.extended:
                self._extended.add(tag)
            if msg.state is not None:
                self._progress[tag] = msg
        self._prune()

    def _prune(self) -> None:
        """Forget marks of messages that ended some other way (revoked, dead-lettered...)."""
        if len(self._progress) + len(self._extended) > 2 * len(self._messages) + 64:
            for tag in [t for t in self._progress if t not in self._messages]:
                del self._progress[tag]
            self._extended.intersection_update(self._messages)

    def _done(self, result: p.ResultMessage) -> None:
        if not (self._progress or self._extended):
            super()._done(result)
            return
        tag = result.delivery_tag
        held = self._messages.get(tag)
        self._progress.pop(tag, None)
        if result.state == states.RETRY or held is None or tag not in self._extended:
            super()._done(result)
            return
        self._extended.discard(tag)
        info = self._request_info(held, result.state)
        super()._done(result)
        if result.store:
            self._store_extended(info)

    def _finish_by_hub(self, msg: Msg, state: str, exc_type: str, reason: str) -> None:
        self._progress.pop(msg.id, None)
        self._extended.discard(msg.id)
        super()._finish_by_hub(msg, state, exc_type, reason)

    def _request_info(self, held: Msg, state: str) -> p.TaskInfo:
        holder = self._peers.get(held.holder) if held.holder is not None else None
        body = held.task.body
        small = len(body) <= MAX_ARGS
        return p.TaskInfo(
            held.task.id,
            state,
            name=held.task.task or None,
            queue=held.queue,
            worker=holder.node if holder is not None else None,
            retries=held.task.retries,
            args=body if small else None,
            args_type=held.task.content_type if small else None,
        )

    def _store_extended(self, info: p.TaskInfo) -> None:
        done = dataclasses.replace(info, date_done=self.clock.time())
        header = p.encode(done)[2]
        expires = self._result_expiry(info.state)
        row = StoredResult(EXTENDED_PREFIX + info.id, info.state, header, b"")
        self.store.put_result(row, expires)

    def _on_stat(self, peer: Peer | None, identity: bytes, msg: p.Stat) -> None:
        progress = self._progress.get(msg.id)
        held = self._messages.get(msg.id)
        if progress is None or held is None or held.holder is None or progress.state is None:
            super()._on_stat(peer, identity, msg)
            return
        holder = self._peers.get(held.holder)
        consumers = len(self._consumers.get(held.queue, ()))
        worker = holder.node if holder is not None else None
        reply = p.Reply(msg.id, progress.state, msg.rid, held.queue, consumers, worker)
        self._send(identity, reply)

    def _on_info(self, peer: Peer | None, identity: bytes, msg: p.InfoQuery) -> None:
        self._send(identity, self._info(msg.id, msg.rid))

    def _info(self, mid: str, rid: int | str | None) -> p.TaskInfo:
        stored = self.store.get_result(mid)
        if stored is not None:
            row = self.store.get_result(EXTENDED_PREFIX + mid)
            if row is None:
                return p.TaskInfo(mid, stored.state, rid)
            kept: p.TaskInfo = p.decode(  # type: ignore[assignment]  # our own row
                [p.TAG, p.TaskInfo.COMMAND, row.header, b""]
            )
            return dataclasses.replace(kept, state=stored.state, rid=rid)
        held = self._messages.get(mid)
        if held is None:
            return p.TaskInfo(mid, states.REVOKED if self._is_revoked(mid) else states.PENDING, rid)
        progress = self._progress.get(mid)
        if held.holder is None:
            state = states.RETRY if held.task.retries else states.PENDING
        elif progress is not None and progress.state is not None:
            state = progress.state
        else:
            state = states.STARTED if held.started else states.RECEIVED
        info = self._request_info(held, state)
        meta = progress.meta if progress is not None and held.holder is not None else None
        ct = progress.content_type if meta is not None and progress is not None else None
        return dataclasses.replace(info, rid=rid, meta=meta, content_type=ct)

    def _on_forget(self, peer: Peer | None, identity: bytes, msg: p.Forget) -> None:
        super()._on_forget(peer, identity, msg)
        self.store.forget_result(EXTENDED_PREFIX + msg.id)
