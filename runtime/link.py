"""Connecting to the hub: DEALER sockets with unique identities and sane options."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import zmq

from celeriac._hub_settings import DEFAULT_MAX_MESSAGE_SIZE
from celeriac.transport.curve import CurveClient
from celeriac.transport.sockets import max_frame_size

__all__ = ["dealer", "new_identity"]


def new_identity(node: str) -> bytes:
    """A peer identity unique per incarnation (``node:pid:nonce``): the hub never confuses a
    restarted process with its predecessor."""
    return f"{node}:{os.getpid()}:{uuid.uuid4().hex[:8]}".encode()


def default_node_name(prefix: str) -> str:
    """``prefix@hostname``, Celery's node name shape."""
    return f"{prefix}@{socket.gethostname()}"


def dealer(
    ctx: zmq.Context[Any],
    endpoint: str,
    identity: bytes,
    curve: CurveClient | None = None,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> zmq.Socket[Any]:
    """A DEALER connected to the hub: linger 0 (we track what was not confirmed ourselves),
    fast reconnects, high water marks above any credit we hand out; a CURVE client of the hub
    when ``curve`` is given (not over inproc, which has no security handshake).

    ``MAXMSGSIZE`` (from ``broker_max_message_size``, with the hub's slack for headers): a
    frame far larger than any body the hub accepts makes libzmq drop the connection before
    buffering it, so a peer that is not the hub cannot fill this process's memory. Bodies
    within the setting never come near it (the hub refuses bigger ones, and this process
    refuses to send them: ``PublishError``, or a ``ResultTooLarge`` failure)."""
    sock: zmq.Socket[Any] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:5555, and hostnames that resolve to IPv6
    sock.setsockopt(zmq.RECONNECT_IVL, 50)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    sock.setsockopt(zmq.SNDHWM, 200_000)
    sock.setsockopt(zmq.RCVHWM, 200_000)
    sock.setsockopt(zmq.MAXMSGSIZE, max_frame_size(max_message_size))
    if curve is not None and not endpoint.startswith("inproc://"):
        curve.apply(sock)
    sock.connect(endpoint)
    return sock
