"""Collecting the replies to one control request, with a deadline (the client's side).

The hub first says which nodes it sent the request to (``CTLSENT``), then relays each node's
``CTLREP`` (an answer too long for one message comes as ``CTLPART`` pieces first, joined
here before the final ``CTLREP`` is read). :meth:`Gather.wait` returns when every one of those
nodes answered, ``limit`` replies came, or the timeout passed; the nodes that did not answer in
time, and the names the hub did not know, are reported as missing (``hub`` itself when it did
not answer): a silent node is never a hang.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack

from celeriac._wire_control2 import MAX_REPLY_TOTAL, join_reply
from celeriac.transport import protocol as p

__all__ = ["Gather", "Gathers", "Replies"]


@dataclass
class Replies:
    """What came back: each node's answer, and the nodes that did not answer."""

    replies: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    #: False when not even the hub answered (the request may not have been sent).
    hub_answered: bool = False


class Gather:
    """The replies of one request, filled by the client's I/O thread."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.nodes: tuple[str, ...] | None = None
        self.unknown: tuple[str, ...] = ()
        self.replies: dict[str, Any] = {}
        #: node -> the leading pieces of its answer (``CTLPART``), until its ``CTLREP``.
        self.parts: dict[str, list[bytes]] = {}
        self.cond = threading.Condition()

    def arrived(self, msg: p.ControlSent | p.ControlReply | p.ControlReplyPart) -> None:
        with self.cond:
            if isinstance(msg, p.ControlSent):
                self.nodes, self.unknown = msg.nodes, msg.unknown
            elif isinstance(msg, p.ControlReplyPart):
                parts = self.parts.setdefault(msg.node, [])
                if sum(map(len, parts)) <= MAX_REPLY_TOTAL:  # a node cuts its answer there
                    parts.append(msg.body)
                return
            else:
                body = join_reply(self.parts.pop(msg.node, []), msg.body)
                try:
                    self.replies[msg.node] = msgpack.unpackb(body, raw=False, strict_map_key=False)
                except Exception as exc:  # a node's bad body: say so, keep the others
                    self.replies[msg.node] = {"error": f"undecodable reply: {exc}"}
            self.cond.notify_all()

    def _complete(self, want_replies: bool) -> bool:
        if self.nodes is None:
            return False
        if not want_replies:
            return True
        if self.limit is not None and len(self.replies) >= self.limit:
            return True
        return all(n in self.replies for n in self.nodes)

    def wait(self, timeout: float, want_replies: bool = True) -> Replies:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self._complete(want_replies):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            if self.nodes is None:  # not even the hub answered: say so
                return Replies({}, ["hub"], False)
            missing = [n for n in self.nodes if n not in self.replies] + list(self.unknown)
            return Replies(dict(self.replies), missing, True)


class Gathers:
    """The open requests of one client, by rid (thread-safe)."""

    def __init__(self) -> None:
        self._open: dict[str, Gather] = {}
        self._lock = threading.Lock()

    def open(self, rid: str, limit: int | None) -> Gather:
        gather = Gather(limit)
        with self._lock:
            self._open[rid] = gather
        return gather

    def close(self, rid: str) -> None:
        with self._lock:
            self._open.pop(rid, None)

    def arrived(self, msg: p.ControlSent | p.ControlReply | p.ControlReplyPart) -> None:
        with self._lock:
            gather = self._open.get(msg.rid)
        if gather is not None:
            gather.arrived(msg)
