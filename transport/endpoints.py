"""Hub addresses, sans-IO: where a ``tcp://`` URL points and whether that is this machine only.

A broker URL is ``tcp://host:port`` (an IPv4 address, a hostname, or an IPv6 literal in
brackets: ``tcp://[::1]:5555``), ``ipc:///path`` or ``inproc://name``; ``broker_url`` may list
several hubs (``tcp://h1:5555;tcp://h2:5555``, split by :func:`hub_addresses`, whose one home
is :mod:`celeriac._hub_urls`). Whether a worker may start an embedded hub depends on the host
(see :func:`is_loopback`); nothing here opens a socket or resolves a name.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from celeriac._hub_urls import hub_addresses

__all__ = [
    "TcpAddress",
    "events_url",
    "hub_addresses",
    "hub_events_urls",
    "is_loopback",
    "needs_ipv6",
    "parse_tcp",
]

#: Host names that always mean "this machine, loopback" (resolving them is not needed).
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True, slots=True)
class TcpAddress:
    """The host and port of a ``tcp://`` URL (``host`` without IPv6 brackets; ``port`` may
    be ``"*"`` in a bind address: any free port)."""

    host: str
    port: str

    @property
    def is_ipv6(self) -> bool:
        """True for an IPv6 literal (``tcp://[::1]:5555``)."""
        return ":" in self.host

    def url(self, port: str | int | None = None) -> str:
        """The URL again, optionally with another port (brackets restored for IPv6)."""
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        return f"tcp://{host}:{self.port if port is None else port}"


def parse_tcp(url: str) -> TcpAddress | None:
    """The host and port of a ``tcp://host:port`` URL; None for other schemes."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "tcp":
        return None
    host, _, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return TcpAddress(host, port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` can only mean this machine: ``localhost``, 127.0.0.0/8 or ``::1``.

    A hostname other than ``localhost`` is never loopback here, even if it resolves to this
    machine: the decision must not depend on DNS answers or on which machine runs it.
    """
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def needs_ipv6(url: str) -> bool:
    """Whether a socket bound at ``url`` needs ZeroMQ's IPv6 option: an IPv6 literal, a
    hostname (it may resolve to IPv6) or ``*``; not an IPv4 literal (with the option on, such a
    socket reports its address as ``[::ffff:127.0.0.1]``)."""
    address = parse_tcp(url)
    if address is None:
        return False
    try:
        return ipaddress.ip_address(address.host).version == 6
    except ValueError:
        return True


def events_url(bind: str) -> str:
    """Where a hub bound at ``bind`` publishes events: the next TCP port (``*`` stays
    random), or ``<path>.events`` for ipc:// and inproc://."""
    address = parse_tcp(bind)
    if address is None:
        return f"{bind}.events"
    return address.url("*" if address.port == "*" else int(address.port) + 1)


def hub_events_urls(broker_url: str) -> str:
    """Where the hubs of ``broker_url`` publish events: :func:`events_url` of each, joined
    with ``;`` as the hubs are (a subscriber connects to every one)."""
    return ";".join(events_url(address) for address in hub_addresses(broker_url))
