"""Sending and receiving multipart messages without pyzmq's per-frame flag arithmetic.

pyzmq's ``send_multipart`` computes ``zmq.SNDMORE | flags`` for every frame and
``recv_multipart`` asks ``getsockopt(zmq.RCVMORE)`` through the sugar layer; both go through
``enum.IntFlag`` operations that cost about 1.6 µs each on CPython 3.11, so a 6-frame delivery
paid ~10 µs in flag arithmetic alone on each side (measured: 18.5 µs for a 5-frame round trip
over inproc with the sugar methods, 8.6 µs with these). These two functions do the same calls
with plain integer flags on the backend socket methods. Semantics are pyzmq's: bytes in, bytes
out (copying), ``zmq.Again``/``zmq.ZMQError`` raised as before.

Receiving asks libzmq for each frame as a ``zmq.Frame`` (``copy=False``), whose ``more`` the
backend fills from ``RCVMORE`` in C, and takes its bytes: the backend's ``get(RCVMORE)``, the
obvious way to ask, converts the option to a ``SocketOption`` enum in Python each time (measured
on an inproc pair, a 4-frame message: 2.9 µs that way, 2.0 µs this way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import zmq
from zmq.backend import Socket as _Backend

__all__ = ["NOBLOCK", "readable", "recv_frames", "send_frames"]

#: ``zmq.NOBLOCK`` as a plain int.
NOBLOCK: Final = int(zmq.NOBLOCK)
_SNDMORE: Final = int(zmq.SNDMORE)
_EVENTS: Final = int(zmq.EVENTS)
_POLLIN: Final = int(zmq.POLLIN)
_send = _Backend.send
_recv = _Backend.recv
#: Typed loosely: its value is an int or bytes by option, and EVENTS is an int.
_get: Callable[[zmq.Socket[Any], int], Any] = _Backend.get


def send_frames(sock: zmq.Socket[Any], frames: Sequence[bytes], flags: int = 0) -> None:
    """``sock.send_multipart(frames, flags)`` with integer flags (``flags``: 0 or NOBLOCK).

    As with pyzmq, a failure on the first frame sends nothing; libzmq queues a multipart
    message atomically, so a failure later cannot leave half a message on the wire.
    """
    more = flags | _SNDMORE
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        _send(sock, frame, more if i < last else flags)


def recv_frames(sock: zmq.Socket[Any], flags: int = 0) -> list[bytes]:
    """``sock.recv_multipart(flags)`` with integer flags: every frame of one message, as bytes."""
    frame = _recv(sock, flags, False)  # copy=False: a Frame, its ``more`` set in C
    parts: list[bytes] = [frame.bytes]
    while frame.more:
        frame = _recv(sock, flags, False)
        parts.append(frame.bytes)
    return parts


def readable(sock: zmq.Socket[Any]) -> bool:
    """Whether a message waits on ``sock`` (``ZMQ_EVENTS``): about 0.9 µs, where a receive
    that finds nothing costs 2.4 µs (``zmq.Again`` is built in Python, with an import)."""
    return bool(_get(sock, _EVENTS) & _POLLIN)
