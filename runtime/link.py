"""Connecting to the hub: DEALER sockets with unique identities and sane options, and the
worker connection's :class:`HubLink`, which moves to the next hub of ``broker_url`` when the
one it talks to is lost (failover, :mod:`celeriac.transport.session.failover`)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import zmq

from celeriac._hub_settings import DEFAULT_MAX_MESSAGE_SIZE
from celeriac._log import get_logger
from celeriac.transport import protocol as p
from celeriac.transport.curve import CurveClient
from celeriac.transport.endpoints import hub_addresses
from celeriac.transport.multipart import NOBLOCK, recv_frames, send_frames
from celeriac.transport.session import HubRotation
from celeriac.transport.session.failover import HubProbe
from celeriac.transport.sockets import max_frame_size

__all__ = ["HubLink", "dealer", "new_identity", "probe_hubs"]

_log = get_logger("celeriac.worker")


def new_identity(node: str) -> bytes:
    """A peer identity unique per incarnation (``node:pid:nonce``): the hub never confuses a
    restarted process with its predecessor."""
    return f"{node}:{os.getpid()}:{uuid.uuid4().hex[:8]}".encode()


def default_node_name(prefix: str) -> str:
    """``prefix@hostname``, Celery's node name shape."""
    return f"{prefix}@{socket.gethostname()}"


#: A peer started before its hub (a client before the worker whose embedded hub it uses), or
#: whose hub restarted, tries to connect again after 50, 100, 200 ms, then every 250 ms: it
#: joins at most 250 ms after the hub is up. (libzmq's backoff up to 1 s made that up to 1 s:
#: a client queued its first task 0.8 s before the hub came up and waited 1.55 s in all.)
#: A connect to a port nobody listens on is one refused SYN: four a second cost nothing.
RECONNECT_FIRST_MS = 50
RECONNECT_MAX_MS = 250


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
    refuses to send them: ``PublishError``, or a ``ResultTooLarge`` failure).

    ``endpoint`` listing several hubs connects to the first: a peer that fails over to the
    others uses :class:`HubLink` (or the client's own rotation)."""
    endpoint = hub_addresses(endpoint)[0]
    sock: zmq.Socket[Any] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:5555, and hostnames that resolve to IPv6
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_FIRST_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
    sock.setsockopt(zmq.SNDHWM, 200_000)
    sock.setsockopt(zmq.RCVHWM, 200_000)
    sock.setsockopt(zmq.MAXMSGSIZE, max_frame_size(max_message_size))
    if curve is not None and not endpoint.startswith("inproc://"):
        curve.apply(sock)
    sock.connect(endpoint)
    return sock


def probe_hubs(
    ctx: zmq.Context[Any],
    order: tuple[str, ...],
    curve: CurveClient | None,
    *,
    timeout: float,
    monotonic: Callable[[], float] = time.monotonic,
) -> str | None:
    """PING every hub of ``order`` at once; the first of ``order`` that answers (see
    :class:`~celeriac.transport.session.failover.HubProbe`), or None when none answered within
    ``timeout``. Logs ``hub_probed``."""
    probe = HubProbe(order, started=monotonic(), timeout=timeout)
    poller = zmq.Poller()
    socks: dict[zmq.Socket[Any], str] = {}
    try:
        for address in order:
            sock = dealer(ctx, address, new_identity("probe"), curve)
            socks[sock] = address
            with contextlib.suppress(zmq.Again):  # not queued: that hub cannot answer
                send_frames(sock, p.encode(p.Ping()), NOBLOCK)
            poller.register(sock, zmq.POLLIN)
        while not probe.done(monotonic()):
            for sock, _ in poller.poll(50):
                recv_frames(sock, NOBLOCK)
                probe.heard(socks[sock], monotonic())
    finally:
        for sock in socks:
            sock.close(0)
    chosen = probe.choice()
    _log.info("hub_probed", chosen=chosen, answered=sorted(probe.answered), listed=len(order))
    return chosen


class HubLink:
    """A worker connection's DEALER to one hub of ``broker_url``, moved to the next when the
    hub is lost (silent for three heartbeats; with one address it never moves).

    The connection thread owns it: it reads :attr:`sock`, and once per turn asks
    :meth:`moved`; True means the socket is new (to another hub) and the worker says ``HELLO``
    there with the deliveries it holds.
    """

    def __init__(
        self,
        ctx: zmq.Context[Any],
        url: str,
        identity: bytes,
        curve: CurveClient | None,
        *,
        heartbeat: float,
        now: float,
        strategy: Any = "round-robin",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.rotation = HubRotation.from_url(url, heartbeat=heartbeat, now=now, strategy=strategy)
        self._ctx, self._identity, self._curve = ctx, identity, curve
        self._max_message_size = max_message_size
        self.sock = self._open(self.rotation.current)

    def probe(self, timeout: float, monotonic: Callable[[], float]) -> None:
        """With several hubs, start at the first that answers (:func:`probe_hubs`), before
        any traffic on :attr:`sock`."""
        if not self.rotation.several:
            return
        order = self.rotation.order()
        chosen = probe_hubs(self._ctx, order, self._curve, timeout=timeout, monotonic=monotonic)
        if chosen is not None and chosen != self.rotation.current:
            self.rotation.turn_to(chosen, monotonic())
            self.sock.close(0)
            self.sock = self._open(chosen)

    @classmethod
    def for_node(cls, node: Any, identity: bytes, curve: CurveClient | None) -> HubLink:
        """The link of a worker node (its context, ``hub_endpoint``, settings and clock)."""
        conf, clock = node.conf, node.app.clock
        link = cls(
            node._ctx,
            node.hub_endpoint,
            identity,
            curve,
            heartbeat=float(conf.broker_heartbeat),
            now=clock.monotonic(),
            strategy=conf.broker_failover_strategy,
            max_message_size=conf.broker_max_message_size,
        )
        link.probe(float(conf.broker_connection_timeout), clock.monotonic)
        return link

    @property
    def endpoint(self) -> str:
        """The address of the hub talked to now."""
        return self.rotation.current

    def _open(self, endpoint: str) -> zmq.Socket[Any]:
        return dealer(
            self._ctx,
            endpoint,
            self._identity,
            self._curve,
            max_message_size=self._max_message_size,
        )

    def moved(self, poller: zmq.Poller, last_heard: float | None, now: float) -> bool:
        """Move to the next hub if the current one is lost (logs ``hub_failover``); True when
        :attr:`sock` is a new socket, registered in ``poller`` in place of the old one."""
        if not self.rotation.due(last_heard, now):
            return False
        line = self.rotation.advance(last_heard, now)
        getattr(_log, line.level)(line.event, **line.fields)
        poller.unregister(self.sock)
        self.sock.close(0)
        self.sock = self._open(self.rotation.current)
        poller.register(self.sock, zmq.POLLIN)
        return True
