"""Queued bodies out of RAM: the hub keeps what dispatch needs, and reads a body when it is due.

How it works
------------
A queued message's decoded header (what routing, priorities, expiry, chords and
revocations read) stays in RAM, in its :class:`~.model.Msg`. Its body (the
task's arguments: most of its size) is in the store from the moment it is published. The
hub also keeps the bodies of the most recently published (and retried) messages in RAM, in a
window bounded in bytes (``hub_body_window_size``): a message delivered soon after its
publish, the common case when workers keep up, is sent with no store read.

When the window is full, the oldest entry leaves it: if that message is still queued or out
for delivery, its body and its raw header bytes are dropped from RAM (``Msg.light``; the
decoded header fields stay). Delivering a light message reads its header and body back from
the store (one indexed ``SELECT``), for that delivery only. Messages restored after a
restart are loaded light: a hub restarted with a long backlog holds its decoded headers, not
its bodies. A body missing from the store (a bug, or a damaged file) ends its message as
REJECTED with the reason, never a crash.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Final

from celeriac._log import get_logger

from .. import protocol as p
from .base import HubBase
from .limits import DEFAULT_BODY_WINDOW
from .model import Msg

__all__ = ["BODY_ENTRY_OVERHEAD", "Bodies", "without_body"]

_log = get_logger("celeriac.hub")
#: What one window entry costs besides its body (the bookkeeping), counted against the window.
BODY_ENTRY_OVERHEAD: Final = 128


def without_body(task: p.TaskMessage) -> p.TaskMessage:
    """``task`` without its body, and without its raw header bytes (the store has both, read
    back together at delivery). Its task name, content type and queue become interned
    strings: a backlog of one task type holds one copy of each, not one per message."""
    return dataclasses.replace(
        task,
        body=b"",
        task=sys.intern(task.task),
        content_type=sys.intern(task.content_type),
        queue=sys.intern(task.queue),
    )


class Bodies(HubBase):
    """The window of bodies kept in RAM, and reading the others back at delivery."""

    #: Bytes of recent bodies kept in RAM (``hub_body_window_size``); 0 keeps none.
    body_window_size: int = DEFAULT_BODY_WINDOW

    def _keep_body(self, msg: Msg) -> None:
        """``msg`` (its body in RAM) enters the window; the oldest bodies leave it."""
        window = self._body_window
        old = window.pop(msg.id, None)
        if old is not None:
            self._window_bytes -= old
        size = len(msg.task.body) + BODY_ENTRY_OVERHEAD
        window[msg.id] = size
        self._window_bytes += size
        limit = self.body_window_size
        while self._window_bytes > limit and window:
            qid, n = window.popitem(last=False)
            self._window_bytes -= n
            leaving = self._messages.get(qid)
            if leaving is not None and not leaving.light:
                leaving.task = without_body(leaving.task)
                leaving.light = True

    def _forget_body(self, qid: str) -> None:
        """``qid`` left the hub (acknowledged): its entry leaves the window at once, so a
        drained hub keeps no ids of messages gone (they would otherwise wait to be pushed out)."""
        size = self._body_window.pop(qid, None)
        if size is not None:
            self._window_bytes -= size

    def _delivery_task(self, msg: Msg) -> p.TaskMessage | None:
        """The task to send for ``msg``, with its body (header and body read from the store
        if ``msg`` is light); None if the store does not have them."""
        if not msg.light:
            return msg.task
        payload = self._payload_of(msg)
        if payload is None:
            return None
        header, body = payload
        task = dataclasses.replace(msg.task, body=body)
        object.__setattr__(task, "raw", header)  # forwarded as stored, as published
        return task

    def _body_of(self, msg: Msg) -> bytes | None:
        """``msg``'s body, from RAM or the store."""
        if not msg.light:
            return msg.task.body
        payload = self._payload_of(msg)
        return None if payload is None else payload[1]

    def _payload_of(self, msg: Msg) -> tuple[bytes, bytes] | None:
        self.counters["bodies_read"] = self.counters.get("bodies_read", 0) + 1
        payload = self.store.get_payload(msg.id)
        if payload is None:
            self.counters["internal_errors"] += 1
            _log.error("message_body_missing", id=msg.id, queue=msg.queue)
        return payload

    def _body_statistics(self) -> dict[str, int]:
        return {"body_window": len(self._body_window), "body_window_bytes": self._window_bytes}
