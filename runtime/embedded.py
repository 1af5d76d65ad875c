"""Whether a worker node runs the hub itself (the embedded hub), and starting it.

How it is decided
-----------------
By the setting ``worker_embedded_hub`` (``celeriac worker --embedded-hub``), never by trying
to bind an address that may belong to another machine:

* ``never``: connect to ``broker_url`` and wait for the hub there.
* ``always``: this worker is the hub: it binds ``broker_url`` (an address of this machine, e.g.
  ``tcp://0.0.0.0:5555``); if it cannot, it stops with the reason.
* ``auto`` (the default): embed only if no broker is configured (``broker_url`` left at its
  default, neither ``--broker``, the app's settings nor ``CELERIAC_BROKER_URL`` gave one) and
  nothing listens on that default loopback address: the one-command start on one machine. A
  worker given an address, even a loopback one, connects to it and says "waiting for the hub
  at ..." (at growing intervals) until it answers: it never takes a port that belongs to a hub
  that is only restarting (issue 16: such a worker once kept the port with an empty store).

A ``broker_url`` that lists several hubs (failover) always means "connect": those are
standalone hubs, and ``always`` with such a list is refused.

Where it runs
-------------
In a thread of the worker (:class:`~celeriac.transport.hubserver.HubServer`), talking to the
worker in-process, by default; with ``worker_embedded_hub_process`` in a child process of the
worker (:mod:`.embedded_process`): the two do not share one GIL, the child dies with its worker
and one that dies alone is started again. Issue 18 measured both on 2 cores: the process
costs about 80-100 CPU µs more per task in all (messages between processes instead of
in-process) and did not serve more tasks per second, so the thread stays the default.

A second worker started on the same machine finds the port taken (the connect succeeds) and uses
the first worker's hub. Two workers racing to embed: one binds, the other's bind fails with
"address in use" and it connects instead.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from typing import Any, Literal

import zmq

from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport.endpoints import hub_addresses, is_loopback, parse_tcp
from celeriac.transport.hubserver import HubAddressError, HubServer

from .embedded_process import EXIT_HUB_DIED, HubProcess

__all__ = ["EmbeddedHub", "describe_hub", "embedded_hub_plan", "start_embedded_hub"]

_log = get_logger("celeriac.worker")

#: How long the "is anybody listening on this loopback port" probe may take.
PROBE_TIMEOUT = 1.0

Plan = Literal["embed", "connect"]


def embedded_hub_plan(url: str, mode: str, *, configured: bool = False) -> tuple[Plan, str]:
    """What a worker does about the hub at ``url`` given ``worker_embedded_hub``, and why.

    ``configured``: ``url`` was given (``--broker``, a setting, the environment) rather than
    left at its default. Pure but for ``auto`` on the default loopback address, where one TCP
    connect tells whether something listens there.
    """
    several = len(hub_addresses(url)) > 1  # failover over standalone hubs: never one of ours
    if several and mode == "always":
        raise ImproperlyConfigured(
            f"worker_embedded_hub is 'always' but broker_url lists several hubs ({url}): "
            "a worker embeds a hub at one address; with several it connects to them"
        )
    if several or mode == "never":
        return "connect", (
            "broker_url lists several hubs (failover): a worker connects to them"
            if several
            else "worker_embedded_hub is 'never'"
        )
    if mode == "always":
        return "embed", "worker_embedded_hub is 'always'"
    if configured:
        return "connect", (
            "broker_url was given: 'auto' embeds a hub only when no broker is configured "
            "(--embedded-hub always makes this worker the hub)"
        )
    return _default_address_plan(url)


def _default_address_plan(url: str) -> tuple[Plan, str]:
    """``auto`` on the default broker address: embed where nothing listens on loopback."""
    address = parse_tcp(url)
    if address is None:
        return "connect", "the broker URL is not tcp:// (an ipc/inproc hub is started apart)"
    if not is_loopback(address.host):
        return "connect", "the broker URL is not a loopback address (a hub on a network)"
    if _listening(address.host, int(address.port)):
        return "connect", "a hub already listens at the broker address"
    return "embed", "no broker configured and nothing listening at the default address"


def _listening(host: str, port: int) -> bool:
    """Whether a TCP connect to ``host:port`` succeeds (anything but "refused" counts as yes:
    only a refusal proves that nobody is there)."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return True


@dataclass(frozen=True, slots=True)
class EmbeddedHub:
    """A worker's embedded hub: a :class:`HubServer` thread, or a :class:`HubProcess`
    (``worker_embedded_hub_process``); the worker's own connection uses ``local_endpoint``
    (in-process, or the child's ``ipc://`` address: no TCP either way)."""

    runner: HubServer | HubProcess
    local_endpoint: str
    #: The process that serves (the worker's own for a thread).
    pid: int

    def stop(self) -> None:
        """Stop the hub: it finishes its turn, commits and closes its store."""
        self.runner.stop()


def start_embedded_hub(conf: Settings, ctx: zmq.Context[Any], inproc: str) -> EmbeddedHub | None:
    """Start the hub in this worker if ``worker_embedded_hub`` says so; None means "connect to
    ``broker_url``". A thread's hub shares ``ctx`` and also binds ``inproc`` for our worker."""
    url: str = conf.broker_url
    mode: str = conf.worker_embedded_hub
    plan, reason = embedded_hub_plan(url, mode, configured=conf.is_set("broker_url"))
    if plan == "connect":
        _log.info("using_hub", endpoint=url, reason=reason)
        return None
    try:
        hub = _start(conf, ctx, inproc)
    except HubAddressError as exc:
        if mode == "auto" and exc.url == url and exc.errno == errno.EADDRINUSE:
            # Another worker on this machine embedded a hub between our probe and our bind.
            _log.info("using_hub", endpoint=url, reason="another worker started the hub first")
            return None
        raise ImproperlyConfigured(
            f"{exc}; this worker was to run the hub itself ({reason}): to use a hub that runs "
            "elsewhere, set worker_embedded_hub='never' (celeriac worker --embedded-hub never)"
        ) from None
    _log.info(
        "embedded_hub_started",
        endpoint=url,
        data_dir=str(hub.runner.data_dir),
        reason=reason,
        pid=hub.pid,
        process=isinstance(hub.runner, HubProcess),
    )
    return hub


def _start(conf: Settings, ctx: zmq.Context[Any], inproc: str) -> EmbeddedHub:
    if conf.worker_embedded_hub_process:
        process = HubProcess(conf)
        process.start()
        assert process.pid is not None
        return EmbeddedHub(process, process.local_endpoint, process.pid)
    server = HubServer.from_settings(conf, context=ctx, also_bind=(inproc,))
    server.on_death = _hub_died
    server.start()
    return EmbeddedHub(server, inproc, os.getpid())


def _hub_died(exc: BaseException) -> None:
    """The embedded hub's loop died: a worker must not live on hub-less (its clients would
    hang), so the process exits at once; the store keeps every confirmed task for the next
    start, and a supervisor (systemd, Kubernetes) restarts the worker."""
    _log.critical(
        "embedded_hub_died", error=f"{type(exc).__name__}: {exc}"[:300], exit=EXIT_HUB_DIED
    )
    os._exit(EXIT_HUB_DIED)


def describe_hub(hub: EmbeddedHub | None, broker_url: str) -> str:
    """One line for the banner: the embedded hub and its data directory, or where ours is."""
    if hub is None:
        return f"at {broker_url} (not embedded)"
    if hub.runner.store_url:
        return f"embedded, listening at {broker_url}, store {hub.runner.store_description}"
    return f"embedded, listening at {broker_url}, data in {hub.runner.data_dir}"
