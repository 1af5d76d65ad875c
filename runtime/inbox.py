"""The way from a worker node's other threads to its connection thread (inproc PUSH/PULL).

Slot threads, task-type actors, keyed actors and a prefork child's main thread never touch
the DEALER socket: each pushes frames on a PUSH socket of its own (one per thread, made on
first use) to the PULL socket the connection thread polls (:mod:`.connection`). The first
frame says what follows: a slot's index (2 bytes, big-endian) before that slot's encoded
outcome, or :data:`LOST`; an empty frame before a *kind* (``SEND``, ``RUN``, ``CTL``,
``SETTLE``, or ``KEYED`` from :mod:`.keyed`) and its payload. ZeroMQ keeps each thread's
order, which is what makes an outcome leave before the ``STAT`` that settles it.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import msgpack
import zmq

from celeriac.transport import protocol as p
from celeriac.transport.multipart import send_frames

__all__ = ["CTL", "LOST", "RUN", "SEND", "SETTLE", "Inbox"]

#: A slot was replaced with its task (after the slot's index).
LOST: Final = b"LOST"
#: Kinds (after an empty frame): a message to forward as it is, a gated delivery its type
#: released, a control command to run here, a confirmation to ask of the hub.
SEND: Final = b"SEND"
RUN: Final = b"RUN"
CTL: Final = b"CTL"
SETTLE: Final = b"SETTLE"


class Inbox:
    """The PUSH side, for any thread; :meth:`bind` makes the connection thread's PULL."""

    def __init__(self, ctx: zmq.Context[Any], url: str) -> None:
        self._ctx = ctx
        self.url = url
        self._local = threading.local()

    def bind(self) -> zmq.Socket[Any]:
        """The PULL socket the connection thread reads (bound before any push connects)."""
        pull: zmq.Socket[Any] = self._ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        pull.bind(self.url)
        return pull

    def push(self) -> zmq.Socket[Any]:
        """This thread's PUSH socket."""
        sock: zmq.Socket[Any] | None = getattr(self._local, "push", None)
        if sock is None:
            sock = self._ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.url)
            self._local.push = sock
        return sock

    def release_thread_socket(self) -> None:
        """Close this thread's PUSH socket (a thread that exits)."""
        sock = getattr(self._local, "push", None)
        if sock is not None:
            sock.close(0)
            self._local.push = None

    def outcome(self, slot: int, message: p.Message) -> None:
        """Slot ``slot``'s outcome (encoded here, in the slot's thread)."""
        send_frames(self.push(), [slot.to_bytes(2, "big"), *p.encode(message)])

    def lost(self, slot: int) -> None:
        """Slot ``slot`` was replaced: whatever it held goes back to the hub."""
        send_frames(self.push(), [slot.to_bytes(2, "big"), LOST])

    def send(self, message: p.Message) -> None:
        """A message for the hub, sent in this thread's order after the outcomes before it."""
        send_frames(self.push(), [b"", SEND, *p.encode(message)])

    def release(self, tag: str) -> None:
        """The gated delivery ``tag`` may run."""
        send_frames(self.push(), [b"", RUN, tag.encode()])

    def control(self, command: str, arguments: dict[str, Any], ask: int | None) -> None:
        """Run a control command in the connection thread (its answer under ``ask``)."""
        payload = msgpack.packb([command, arguments, ask], use_bin_type=True)
        send_frames(self.push(), [b"", CTL, payload])

    def settle(self, task_id: str) -> None:
        """Ask the hub to confirm it has what was sent before (see WorkerSession.settle)."""
        send_frames(self.push(), [b"", SETTLE, task_id.encode()])
