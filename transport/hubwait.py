"""The hub loop's wait for work: ``poll(2)`` on the sockets' descriptors (issue 18).

``zmq.Poller`` (``zmq_poll``) asks each ZeroMQ socket for ``ZMQ_EVENTS`` twice per call, once
before it sleeps and once after, and each ask is a ``poll`` and a ``getpid`` system call: with
the hub's three sockets (its ROUTER, the ROUTER's monitor, the events XPUB) a turn paid 14
system calls to wait, more than the rest of a one-message turn together. :class:`TurnWait`
polls the sockets' descriptors (``ZMQ_FD``) instead: one ``poll`` per wait.

A socket's descriptor is edge-triggered: it is readable while commands wait for the socket,
and any operation on the socket may consume them (a message then waits with the descriptor
quiet). The loop keeps the rules that make it sound: it asks the ROUTER's ``ZMQ_EVENTS``
after its last operation of a turn (:func:`~.multipart.readable`; ``ready``: a message waits,
the next wait does not sleep), it drains the monitor to ``EAGAIN`` whenever its descriptor
fires and does nothing else with it, and it reads the subscriptions of the events socket
after each publish on it (a send may consume the command that announced one). The first wait
reports every socket, so what came before the loop started is read.
"""

from __future__ import annotations

import contextlib
import select
from typing import Any, Final

import zmq

__all__ = ["EVENTS", "MONITOR", "ROUTER", "TurnWait", "drain"]

#: Bits of :meth:`TurnWait.wait`'s answer: whose descriptor fired.
ROUTER: Final = 1
MONITOR: Final = 2
EVENTS: Final = 4
_ALL: Final = ROUTER | MONITOR | EVENTS
_POLLIN: Final = select.POLLIN


def _fd(sock: zmq.Socket[Any]) -> int:
    return int(sock.getsockopt(zmq.FD))


class TurnWait:
    """Waits on the hub's sockets' descriptors and one plain descriptor (the state's)."""

    __slots__ = ("_events", "_first", "_monitor", "_poll", "_router", "_watched")

    def __init__(
        self,
        router: zmq.Socket[Any],
        monitor: zmq.Socket[Any],
        events: zmq.Socket[Any] | None,
    ) -> None:
        self._poll = select.poll()
        self._router = _fd(router)
        self._monitor = _fd(monitor)
        self._events = -1 if events is None else _fd(events)
        for fd in (self._router, self._monitor, self._events):
            if fd >= 0:
                self._poll.register(fd, _POLLIN)
        self._watched: int | None = None
        self._first = True

    def watch(self, fd: int | None) -> None:
        """Keep ``fd`` (:meth:`HubState.wake_fd`; None: none) among the descriptors waited on."""
        if fd != self._watched:
            if self._watched is not None:
                with contextlib.suppress(KeyError):  # closed and forgotten already
                    self._poll.unregister(self._watched)
            if fd is not None:
                self._poll.register(fd, _POLLIN)
            self._watched = fd

    def wait(self, timeout_ms: int) -> int:
        """Sleep up to ``timeout_ms`` for a descriptor; the :data:`ROUTER`, :data:`MONITOR`
        and :data:`EVENTS` bits of those that fired (the first call: all of them)."""
        fired = 0
        for fd, _ in self._poll.poll(timeout_ms):
            if fd == self._router:
                fired |= ROUTER
            elif fd == self._monitor:
                fired |= MONITOR
            elif fd == self._events:
                fired |= EVENTS
        if self._first:
            self._first = False
            return _ALL
        return fired


def drain(sock: zmq.Socket[Any]) -> bool:
    """Read ``sock`` to ``EAGAIN`` (its descriptor is edge-triggered); True if anything came."""
    came = False
    while True:
        try:
            sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return came
        came = True
