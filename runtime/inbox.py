"""The way from a worker node's other threads to its connection thread (a queue and a doorbell).

Slot threads, task-type actors, keyed actors, the pool's supervisor and a prefork child's main
thread never touch the DEALER socket: each appends its message (a list of frames) to one queue
shared with the connection thread (:meth:`Inbox.put`), and only the append that finds the queue
empty rings the connection's doorbell: an ``eventfd`` (a pipe where there is none) that the
connection thread polls beside its socket (:mod:`.connection`). The connection, woken, clears
the doorbell (:meth:`Inbox.rung`) and takes the queued messages (:meth:`Inbox.take_all`)
until the queue is empty, so one wake-up carries every message queued meanwhile, and a message
costs a lock and an append instead of one ZeroMQ send per frame. (The doorbell was a ZeroMQ
PUSH per thread to an inproc PULL: a ring and its read cost about 6 µs more CPU, measured with
a thread pair; see the commit that made it an eventfd.)

A slot's encoded outcome is queued as ``(index, frames)`` (:data:`Queued`): no frame made
and parsed again for every task. Anything else is a list of frames whose first says what
follows: a slot's index (2 bytes, big-endian) before :data:`LOST`, or an empty frame before a
*kind* (``SEND``, ``RUN``, ``CTL``, ``SETTLE``, or ``KEYED`` from :mod:`.keyed`) and its
payload. The queue keeps the order of the
appends across all threads, which is what makes an outcome leave before the ``STAT`` that
settles it, and a slot's outcome reach the session before the ``LOST`` of that slot's later
death reported by another thread.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import msgpack

from celeriac.transport import protocol as p

__all__ = ["CTL", "LOST", "RUN", "SEND", "SETTLE", "Inbox", "Queued"]

#: A slot was replaced with its task (after the slot's index).
LOST: Final = b"LOST"
#: Kinds (after an empty frame): a message to forward as it is, a gated delivery its type
#: released, a control command to run here, a confirmation to ask of the hub.
SEND: Final = b"SEND"
RUN: Final = b"RUN"
CTL: Final = b"CTL"
SETTLE: Final = b"SETTLE"

#: What a ring writes: an eventfd adds it to its counter (8 bytes, native order).
_RING: Final = (1).to_bytes(8, sys.byteorder)


#: What the queue holds: a slot's outcome ``(index, frames)``, or a message's frames.
Queued = tuple[int, list[bytes]] | list[bytes]

#: What :meth:`Inbox.take_all` gives when nothing is queued (never appended to).
_NOTHING: Final[deque[Queued]] = deque()


def _close(fds: tuple[int, ...]) -> None:
    for fd in fds:
        os.close(fd)


class Inbox:
    r"""The queue, for any thread to :meth:`put` in, and its doorbell (:attr:`fd`), which the
    connection thread polls, then clears (:meth:`rung`) before it :meth:`take`\ s."""

    def __init__(self) -> None:
        self._queue: deque[Queued] = deque()
        #: Set by the connection thread's loop: sends a slot's outcome from the slot's thread
        #: when the loop sleeps and the queue is empty (False: queue it).
        self.direct: Callable[[int, list[bytes]], bool] | None = None
        # Held to append and to take, so that "the queue was empty" decides the ring exactly:
        # without it a take between another thread's look and its append would strand a message.
        self._lock = threading.Lock()
        fds: tuple[int, ...]
        if hasattr(os, "eventfd"):  # Linux: one counter, one descriptor
            self.fd = self._write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            fds = (self.fd,)
        else:
            self.fd, self._write_fd = fds = os.pipe()
            for end in fds:
                os.set_blocking(end, False)
        # Closed only once no thread can ring it (none holds the inbox): a descriptor closed
        # early could be reused by another file, which a late ring would then write to.
        weakref.finalize(self, _close, fds)

    def put(self, item: Queued) -> None:
        """Queue a message for the connection thread; ring its doorbell if none was waiting."""
        with self._lock:
            ring = not self._queue
            self._queue.append(item)
        if ring:  # a ring that finds the queue already taken only costs an empty look
            with contextlib.suppress(BlockingIOError):  # a pipe full of rings: one is enough
                os.write(self._write_fd, _RING)

    def rung(self) -> None:
        """Clear the doorbell (the connection thread, woken): how many rings does not matter,
        the queue is read to its end."""
        with contextlib.suppress(BlockingIOError):  # cleared already
            os.read(self.fd, 4096)

    def take(self) -> Queued | None:
        """The oldest queued message, or None (the connection thread, once rung)."""
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def take_all(self) -> deque[Queued]:
        """Every queued message, oldest first, in one take (the connection thread, once rung):
        the next put finds the queue empty and rings again."""
        with self._lock:
            if not self._queue:
                return _NOTHING
            taken, self._queue = self._queue, deque()
        return taken

    def outcome(self, slot: int, frames: list[bytes]) -> None:
        """Slot ``slot``'s outcome, encoded (in the slot's thread)."""
        direct = self.direct
        if direct is None or not direct(slot, frames):
            self.put((slot, frames))

    def empty(self) -> bool:
        """Whether nothing waits for the connection thread."""
        return not self._queue

    def ring(self) -> None:
        """Wake the connection thread with nothing queued (it then reads its socket)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, _RING)

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
