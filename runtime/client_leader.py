"""A waiting thread serves the client's socket itself while the I/O thread rests (issue 18).

The sequential ``delay().get()`` cost two hand-offs per message in the client: the ZeroMQ
socket's signal woke the I/O thread, which handled the ``CONF`` and then the ``RES`` and woke
the waiter with an event, which then waited for the GIL the I/O thread still held. Here the
waiter (``get()`` of a result not yet here) takes the socket lock ``_io`` when it is free and
becomes the *leader*: it runs the I/O thread's turn itself (receive, the session's tick, send
what is queued) and sleeps in ``poll`` on the socket's descriptor until its own result has
come; the I/O thread meanwhile *rests*, polling only its wake pipe. One wake-up per message,
in the thread that waits for it.

The rules that keep every message served:

* The I/O thread rests only while there is a leader and no other waiter (:meth:`_following`
  counts the threads that block on something the socket brings: ``flush``, a request, a
  ``get()`` that could not lead). A leader leaving wakes the I/O thread if there are such
  waiters, frames queued or a message already readable; otherwise the I/O thread takes up the
  socket again at the latest :data:`REST_MS` later (a message nobody waits for, such as the
  ``CONF`` of a publish not flushed, may wait that long).
* A thread that needs the I/O thread (frames queued by another thread, its wake pipe) while a
  leader holds the socket asks the leader to yield (``_yield`` and the leader's bell) and takes
  the socket as soon as the leader is out: a leader never holds up another thread's sends.
* The socket's descriptor is edge-triggered (see :mod:`.client`): a leader reads until the
  socket is empty before it sleeps. It looks at ``ZMQ_EVENTS`` only when the socket was used
  since the last look that found nothing (``_armed``): each look costs libzmq two system calls
  (``getpid`` and ``poll``), and the sequential round trip made six (issue 18, s25). A leader
  whose result came leaves at once, without the session's tick (each ``_lead`` starts with one).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Final

import zmq
from zmq.backend import Socket as _Backend

from celeriac._clock import Clock
from celeriac.transport import session as s
from celeriac.transport.multipart import readable

__all__ = ["REST_MS", "ClientLeader"]

#: Longest rest of the I/O thread while a leader serves the socket (ms): a message that
#: arrives after the leader left, for nobody waiting, is read at the latest this late.
REST_MS: Final = 20

_get = _Backend.get
_FD: Final = int(zmq.FD)
_POLLIN: Final = select.POLLIN


class ClientLeader:
    """The leader's side and the I/O thread's rest, for :class:`~.client.Client`."""

    clock: Clock
    _io: threading.Lock
    _ready: bool
    _sock: zmq.Socket[Any]
    _thread: threading.Thread
    _outq: deque[list[bytes]]
    _session: s.ClientSession
    _heartbeat: float
    #: The socket's descriptor will signal the next message: nothing was done to the socket
    #: since a look (``ZMQ_EVENTS``) found nothing waiting. Under ``_io``.
    _armed: bool

    def _init_leader(self) -> None:
        self._armed = False
        #: A user thread serves the socket (under ``_io``); the I/O thread rests meanwhile.
        self._leading = False
        #: The I/O thread rests (polls only its wake pipe).
        self._resting = False
        #: Threads blocked on something the socket brings, other than a leader (counted under
        #: a lock of its own: ``flush`` follows while holding the session's).
        self._followers = 0
        self._followers_lock = threading.Lock()
        #: The I/O thread asks the leader to leave (with a byte on the bell).
        self._yield = False
        self._bell_r, self._bell_w = os.pipe()
        os.set_blocking(self._bell_r, False)
        os.set_blocking(self._bell_w, False)

    def _close_leader(self) -> None:
        for fd in (self._bell_r, self._bell_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _wake(self) -> None:
        raise NotImplementedError  # the client's: wakes its I/O thread

    def _look(self, sock: zmq.Socket[Any]) -> bool:
        """Whether a message waits on ``sock`` (under ``_io``); a look that finds none arms
        the descriptor (``_armed``)."""
        waiting = readable(sock)
        self._armed = not waiting
        return waiting

    def _receive(self, sock: zmq.Socket[Any]) -> None:
        raise NotImplementedError  # the client's: every message waiting, to the session

    def _step(self, sock: zmq.Socket[Any], call: Callable[[], list[s.Effect]]) -> None:
        raise NotImplementedError  # the client's: the session's effects, then the queue sent

    # -- a waiting thread ------------------------------------------------------------------------

    def _lead(self, event: threading.Event, deadline: float) -> bool:
        """Serve the socket from this thread until ``event`` is set or ``deadline`` (monotonic)
        passes: True then. False at once if the socket is busy, or when the I/O thread wants it
        back: the caller then waits on ``event`` as a follower for the rest of its time."""
        if threading.get_ident() == self._thread.ident or not self._io.acquire(blocking=False):
            return False
        try:
            if not self._ready or self._yield:
                return False
            self._leading = True
            sock = self._sock
            poller = select.poll()
            poller.register(int(_get(sock, _FD)), _POLLIN)
            poller.register(self._bell_r, _POLLIN)
            idle_ms = int(self._heartbeat * 1000 / 2)
            clock = self.clock
            while True:
                if not self._armed:  # the socket was used or signalled since the last look
                    self._receive(sock)
                    if event.is_set():
                        return True  # the next leader's or the I/O thread's turn ticks
                self._step(sock, partial(self._session.tick, clock.monotonic()))
                if event.is_set():
                    return True
                if self._yield or self._sock is not sock or not self._ready:
                    return False  # asked to leave, or moved to another hub (the I/O thread's)
                if not self._armed:  # the tick sent: that may have taken a message's signal
                    continue
                left = deadline - clock.monotonic()
                if left <= 0:
                    return True
                self._sleep(poller, min(idle_ms, int(left * 1000) + 1))
        finally:
            self._leading = False
            wake = (
                self._followers
                or self._outq
                or (self._ready and not self._armed and self._look(self._sock))
            )
            self._io.release()
            if wake:
                self._wake()

    def _sleep(self, poller: select.poll, timeout_ms: int) -> None:
        """The leader's sleep: until the socket's descriptor or the bell rings."""
        for fd, _ in poller.poll(timeout_ms):
            if fd == self._bell_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._bell_r, 4096)
            else:
                self._armed = False  # the descriptor fired: look

    @contextlib.contextmanager
    def _following(self) -> Iterator[None]:
        """Around a wait for something the socket brings: the I/O thread serves it (it leaves
        its rest if it was resting)."""
        with self._followers_lock:
            self._followers += 1
        try:
            if self._resting:
                self._wake()
            yield
        finally:
            with self._followers_lock:
                self._followers -= 1

    # -- the I/O thread --------------------------------------------------------------------------

    def _may_rest(self) -> bool:
        """Whether the I/O thread may rest now (a leader serves the socket, nobody follows).
        Sets ``_resting`` first, so a follower that comes meanwhile sees it and wakes it."""
        self._resting = True
        if self._leading and not self._followers:
            return True
        self._resting = False
        return False

    def _take_socket(self) -> None:
        """Acquire ``_io`` for the I/O thread's turn: a leader holding it is asked to yield."""
        if self._io.acquire(blocking=False):
            return
        self._yield = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._bell_w, b"x")
        self._io.acquire()
        self._yield = False
