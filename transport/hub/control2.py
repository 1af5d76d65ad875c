"""Long control replies and single-copy task events at the hub (issue 9, second pass).

How it works
------------
*Long replies.* A node cuts an answer longer than a header may carry into
``CTLPART`` pieces followed by the final ``CTLREP``
(:func:`celeriac._wire_control2.reply_messages`). The hub relays each part at once to the
requester, under the requester's ``rid`` and the node's known name, while the node is still
expected to answer (the final reply ends that, see :mod:`.control`). It holds nothing: the
parts come over the node's one connection, in order, and leave in that order.

*One copy of each event.* A worker with task events on (``-E``) sends its own
``task-started``/``-succeeded``/``-failed``/``-retried``/``-rejected``/``-revoked`` (Celery's
full maps) before the message that makes the hub publish its own copy of the same event. The
hub records ``(task id, type)`` of those here (:attr:`~.base.HubBase.worker_sent`, bounded) and
:meth:`~.base.HubBase._task_event` skips its copy when it finds the pair: a raw subscriber of
the PUB socket sees each event of a task's life once. Without ``-E`` the hub's copies are the
only ones, as before.
"""

from __future__ import annotations

import platform
from typing import Any, Final

from celeriac import __version__
from celeriac._wire_control2 import reply_messages

from .. import protocol as p
from .base import HubBase
from .model import TASK_EVENTS, Peer

__all__ = ["HUB_COPIED", "WORKER_SENT_LIMIT", "LongReplies", "worker_event"]

#: The event types the hub also publishes itself (from DONE, START, retries).
HUB_COPIED: Final = frozenset(
    {"task-started", "task-retried", *(t.decode() for t in TASK_EVENTS.values())}
)
#: The system the hub runs on (``sw_sys`` of its worker events).
_SYSTEM: Final = platform.system()
#: How many worker-sent events the hub remembers while their copy has not come.
WORKER_SENT_LIMIT: Final = 10_000


def worker_event(
    peer: Peer,
    heartbeat: float,
    *,
    queues: tuple[str, ...] | None = None,
    reason: str | None = None,
) -> p.WorkerEvent:
    """The hub's ``worker-online``/``worker-offline`` of ``peer`` with Celery's fields: the
    worker's pid (from its HELLO), ``freq`` (the heartbeat interval the hub gave it), and
    ``sw_ident``/``sw_ver``/``sw_sys`` (celeriac and its version, as the hub runs it: a hub
    speaks only to peers of its protocol; the system is the hub's)."""
    return p.WorkerEvent(
        peer.node,
        queues,
        reason,
        pid=peer.pid,
        freq=float(heartbeat),
        sw_ident="celeriac",
        sw_ver=__version__,
        sw_sys=_SYSTEM,
    )


class LongReplies(HubBase):
    """Relaying reply parts, sending the hub's own long answers, remembering worker events."""

    def _send_reply(self, identity: bytes, rid: str, node: str, value: Any) -> None:
        """Send ``node``'s answer ``value`` to ``rid`` in as many messages as it takes."""
        for message in reply_messages(rid, node, value):
            self._send(identity, message)

    def _relay_part(self, identity: bytes, msg: p.ControlReplyPart) -> None:
        pending = self.__dict__.get("_control_pending")
        waiting = None if pending is None else pending.get(msg.rid)
        if waiting is None:
            return  # late, or not ours to relay
        requester, rid, expected = waiting
        name = expected.get(identity)
        if name is None:
            self.counters["refused"] += 1
            return
        self._send(requester, p.ControlReplyPart(rid, name, msg.body))

    def _on_control_reply_part(
        self, peer: Peer | None, identity: bytes, msg: p.ControlReplyPart
    ) -> None:
        self._relay_part(identity, msg)

    def _remember_worker_events(self, events: Any) -> None:
        """Note the task events a worker sent itself (see the module docstring)."""
        sent = self.worker_sent
        for event in events:
            kind = event.get("type")
            task_id = event.get("uuid")
            if kind in HUB_COPIED and isinstance(task_id, str):
                sent[(task_id, str(kind).encode())] = None
        while len(sent) > WORKER_SENT_LIMIT:
            sent.popitem(last=False)
