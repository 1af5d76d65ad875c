"""The way from a worker node's other threads to its connection thread (a queue and a doorbell).

Slot threads, task-type actors, keyed actors, the pool's supervisor and a prefork child's main
thread never touch the DEALER socket: each appends its message (a list of frames) to one queue
shared with the connection thread (:meth:`Inbox.put`), and only the append that finds the queue
empty rings the connection's doorbell: one empty frame on a PUSH socket of the thread's own
(made on first use) to the PULL socket the connection thread polls (:mod:`.connection`). The
connection, woken, reads the doorbells and takes the queued messages one by one
(:meth:`Inbox.take`) until the queue is empty, so one wake-up carries every message queued
meanwhile, and a message costs a lock and an append instead of one ZeroMQ send per frame.

The first frame says what follows: a slot's index (2 bytes, big-endian) before that slot's
encoded outcome, or :data:`LOST`; an empty frame before a *kind* (``SEND``, ``RUN``, ``CTL``,
``SETTLE``, or ``KEYED`` from :mod:`.keyed`) and its payload. The queue keeps the order of the
appends across all threads, which is what makes an outcome leave before the ``STAT`` that
settles it, and a slot's outcome reach the session before the ``LOST`` of that slot's later
death reported by another thread.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Final

import msgpack
import zmq
from zmq.backend import Socket as _Backend

from celeriac.transport import protocol as p

__all__ = ["CTL", "LOST", "RUN", "SEND", "SETTLE", "Inbox"]

#: A slot was replaced with its task (after the slot's index).
LOST: Final = b"LOST"
#: Kinds (after an empty frame): a message to forward as it is, a gated delivery its type
#: released, a control command to run here, a confirmation to ask of the hub.
SEND: Final = b"SEND"
RUN: Final = b"RUN"
CTL: Final = b"CTL"
SETTLE: Final = b"SETTLE"


_send = _Backend.send  # one frame, plain flags (see transport/multipart.py)


class Inbox:
    r"""The queue, for any thread to :meth:`put` in; :meth:`bind` makes the doorbell's PULL,
    which the connection thread polls before it :meth:`take`\ s."""

    def __init__(self, ctx: zmq.Context[Any], url: str) -> None:
        self._ctx = ctx
        self.url = url
        self._local = threading.local()
        self._queue: deque[list[bytes]] = deque()
        # Held to append and to take, so that "the queue was empty" decides the ring exactly:
        # without it a take between another thread's look and its append would strand a message.
        self._lock = threading.Lock()

    def bind(self) -> zmq.Socket[Any]:
        """The PULL socket the connection thread reads (bound before any push connects)."""
        pull: zmq.Socket[Any] = self._ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        pull.bind(self.url)
        return pull

    def put(self, frames: list[bytes]) -> None:
        """Queue a message for the connection thread; ring its doorbell if none was waiting."""
        with self._lock:
            ring = not self._queue
            self._queue.append(frames)
        if ring:  # a ring that finds the queue already taken only costs an empty look
            _send(self.push(), b"", 0)

    def take(self) -> list[bytes] | None:
        """The oldest queued message, or None (the connection thread, once rung)."""
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def push(self) -> zmq.Socket[Any]:
        """This thread's PUSH socket (its doorbell)."""
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
        self.put([slot.to_bytes(2, "big"), *p.encode(message)])

    def lost(self, slot: int) -> None:
        """Slot ``slot`` was replaced: whatever it held goes back to the hub."""
        self.put([slot.to_bytes(2, "big"), LOST])

    def send(self, message: p.Message) -> None:
        """A message for the hub, sent in this thread's order after the outcomes before it."""
        self.put([b"", SEND, *p.encode(message)])

    def release(self, tag: str) -> None:
        """The gated delivery ``tag`` may run."""
        self.put([b"", RUN, tag.encode()])

    def control(self, command: str, arguments: dict[str, Any], ask: int | None) -> None:
        """Run a control command in the connection thread (its answer under ``ask``)."""
        payload = msgpack.packb([command, arguments, ask], use_bin_type=True)
        self.put([b"", CTL, payload])

    def settle(self, task_id: str) -> None:
        """Ask the hub to confirm it has what was sent before (see WorkerSession.settle)."""
        self.put([b"", SETTLE, task_id.encode()])
