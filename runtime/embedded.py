"""Whether a worker node runs the hub itself (the embedded hub), and starting it.

How it is decided
-----------------
By the setting ``worker_embedded_hub`` (``celeriac worker --embedded-hub``), never by trying
to bind an address that may belong to another machine:

* ``never``: connect to ``broker_url`` and wait for the hub there.
* ``always``: this worker is the hub: it binds ``broker_url`` (an address of this machine, e.g.
  ``tcp://0.0.0.0:5555``); if it cannot, it stops with the reason.
* ``auto`` (the default): embed only if ``broker_url`` is a loopback ``tcp://`` address
  (``127.0.0.1``, ``localhost``, ``[::1]``) on which nothing listens: the one-command start
  on one machine. Any other address (another machine's, a hostname) is connected to, and the
  worker says "waiting for the hub at ..." until it answers.

A ``broker_url`` that lists several hubs (failover) always means "connect": those are
standalone hubs, and ``always`` with such a list is refused.

A second worker started on the same machine finds the port taken (the connect succeeds) and uses
the first worker's hub. Two workers racing to embed: one binds, the other's bind fails with
"address in use" and it connects instead.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any, Literal

import zmq

from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport.endpoints import hub_addresses, is_loopback, parse_tcp
from celeriac.transport.hubserver import HubAddressError, HubServer

__all__ = ["describe_hub", "embedded_hub_plan", "start_embedded_hub"]

_log = get_logger("celeriac.worker")

#: How long the "is anybody listening on this loopback port" probe may take.
PROBE_TIMEOUT = 1.0

Plan = Literal["embed", "connect"]


def embedded_hub_plan(url: str, mode: str) -> tuple[Plan, str]:
    """What a worker does about the hub at ``url`` given ``worker_embedded_hub``, and why.

    Pure but for ``auto`` on a loopback address, where one TCP connect tells whether something
    listens there.
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
    address = parse_tcp(url)
    if address is None:
        return "connect", "the broker URL is not tcp:// (an ipc/inproc hub is started apart)"
    if not is_loopback(address.host):
        return "connect", "the broker URL is not a loopback address (a hub on a network)"
    if _listening(address.host, int(address.port)):
        return "connect", "a hub already listens at the broker address"
    return "embed", "nothing was listening at the broker address (loopback)"


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


def start_embedded_hub(
    conf: Settings, ctx: zmq.Context[Any], inproc: str | None = None
) -> HubServer | None:
    """Start the hub in this process if ``worker_embedded_hub`` says so; None means "connect
    to ``broker_url``". ``inproc`` also binds an in-process endpoint (no TCP for our worker)."""
    url: str = conf.broker_url
    mode: str = conf.worker_embedded_hub
    plan, reason = embedded_hub_plan(url, mode)
    if plan == "connect":
        _log.info("using_hub", endpoint=url, reason=reason)
        return None
    try:
        hub = HubServer.from_settings(conf, context=ctx, also_bind=(inproc,) if inproc else ())
    except HubAddressError as exc:
        if mode == "auto" and exc.url == url and exc.errno == errno.EADDRINUSE:
            # Another worker on this machine embedded a hub between our probe and our bind.
            _log.info("using_hub", endpoint=url, reason="another worker started the hub first")
            return None
        raise ImproperlyConfigured(
            f"{exc}; this worker was to run the hub itself ({reason}): to use a hub that runs "
            "elsewhere, set worker_embedded_hub='never' (celeriac worker --embedded-hub never)"
        ) from None
    hub.on_death = _hub_died
    hub.start()
    _log.info(
        "embedded_hub_started",
        endpoint=url,
        data_dir=str(hub.data_dir.resolve()),
        reason=reason,
    )
    return hub


#: The exit code of a worker whose embedded hub's thread died.
EXIT_HUB_DIED = 70


def _hub_died(exc: BaseException) -> None:
    """The embedded hub's loop died: a worker must not live on hub-less (its clients would
    hang), so the process exits at once; the store keeps every confirmed task for the next
    start, and a supervisor (systemd, Kubernetes) restarts the worker."""
    _log.critical(
        "embedded_hub_died", error=f"{type(exc).__name__}: {exc}"[:300], exit=EXIT_HUB_DIED
    )
    os._exit(EXIT_HUB_DIED)


def describe_hub(hub: HubServer | None, broker_url: str) -> str:
    """One line for the banner: the embedded hub and its data directory, or where ours is."""
    if hub is None:
        return f"at {broker_url} (not embedded)"
    if hub.store_url:
        return f"embedded, listening at {broker_url}, store {hub.store_description}"
    return f"embedded, listening at {broker_url}, data in {hub.data_dir}"
