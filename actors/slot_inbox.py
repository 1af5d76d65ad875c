"""A slot actor's inbox whose wake-up can leave after its put, from a thread without the GIL.

pykka puts each message into the actor's inbox and the actor's thread takes them in order
(``put``, ``get``, ``empty``). A C ``SimpleQueue`` wakes a sleeping reader inside ``put``, with
the GIL held: on a loaded machine the woken slot thread then finds the GIL taken by the
connection thread, sleeps on it, and wakes a second time when the connection releases it in its
poll (two wake-ups per task; the hop from the connection's receive to the task's start was the
longest of a round trip, ``benchmarks/latency_trace.py``, issue 18). Here a sleeping reader
waits on a descriptor (an ``eventfd``, a pipe where there is none) read without the GIL, and
the writer may split its put in two: :meth:`push` queues and says whether the reader sleeps,
:meth:`wake` (later, once the writer holds nothing the slot needs) writes the descriptor, a
system call made without the GIL, so the woken slot takes a free GIL and starts at once.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections import deque
from typing import Any, Final

__all__ = ["SlotInbox"]

_ONE: Final = (1).to_bytes(8, sys.byteorder)


def _close(fds: tuple[int, ...]) -> None:
    for fd in fds:
        os.close(fd)


class SlotInbox:
    """pykka's actor inbox (``put``/``get``/``empty``) for one reader thread, any writers."""

    __slots__ = ("__weakref__", "_asleep", "_items", "_read_fd", "_write_fd")

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        #: True while the reader sleeps, or is about to, on the descriptor; cleared by the
        #: writer that will wake it (exactly one wake per sleep).
        self._asleep = False
        fds: tuple[int, ...]
        if hasattr(os, "eventfd"):  # Linux: one counter, one descriptor
            self._read_fd = self._write_fd = os.eventfd(0, os.EFD_CLOEXEC)
            fds = (self._read_fd,)
        else:
            self._read_fd, self._write_fd = fds = os.pipe()
        # Closed once no thread holds the inbox: a dead actor's ref may still put into it.
        weakref.finalize(self, _close, fds)

    def push(self, item: Any) -> bool:
        """Queue ``item``; True if the reader sleeps: the caller must then call :meth:`wake`
        (no other writer will: the reader counts as woken from now on)."""
        self._items.append(item)
        if self._asleep:
            self._asleep = False
            return True
        return False

    def wake(self) -> None:
        """Wake the reader (after a :meth:`push` that returned True); the GIL is released
        for the system call."""
        os.write(self._write_fd, _ONE)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Queue ``item`` and wake the reader if it sleeps (pykka's ``tell``)."""
        if self.push(item):
            self.wake()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The oldest item; sleeps (without the GIL) until there is one. Only the actor's
        own thread calls it."""
        items = self._items
        while True:
            if items:
                return items.popleft()
            self._asleep = True
            # Looked at again after saying so: an item queued before the flag was set found
            # it clear and woke no one; one queued after finds it set and wakes the descriptor.
            if items:
                self._asleep = False
                return items.popleft()
            os.read(self._read_fd, 8)  # a stale wake from a look above only loops once more

    def empty(self) -> bool:
        """Whether nothing is queued."""
        return not self._items
