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
By ``worker_embedded_hub_process`` (:func:`hub_in_process`): in a child process of the worker
(:mod:`.embedded_process`; the worker's own connection uses its ``ipc://`` address), or in a
thread of the worker (:class:`~celeriac.transport.hubserver.HubServer`, talking to the worker
over ``inproc://``). ``auto``, the default, takes the process when the worker runs its tasks
in its own process and may use two CPUs or more, else the thread. The child dies with its
worker (even a ``kill -9``) and one that dies alone is started again.

Why: a hub thread shares the worker's GIL, so the hub and the tasks take turns on one core.
Issue 18 measured it (``benchmarks/cpu_split.py --tasks 20000 --set
worker_prefetch_multiplier=128``, 2 cores): the thread's process spent ~100-110 CPU µs a noop
task (hub and worker together; as much as a standalone hub and worker apart, the GIL hand-offs
cost little) and served ~7,000 noop/s; the child process ~50 + ~50 µs on two cores, ~9,200
noop/s (standalone: ~8,000), add with results ~8,100 against ~6,600. The thread starts about
0.3 s sooner, takes about 35 MB less and answers a lone task ~90 µs sooner (p50 ~920 against
~1,010 µs on the loaded machine: no hop between processes); a prefork parent runs no tasks, so
its hub thread has the GIL nearly to itself there.

A second worker started on the same machine finds the port taken (the connect succeeds) and uses
the first worker's hub. Two workers racing to embed: one binds, the other's bind fails with
"address in use" and it connects instead.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import zmq

from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport.endpoints import hub_addresses, is_loopback, parse_tcp
from celeriac.transport.hubfiles import HubAddressError

from .embedded_process import EXIT_HUB_DIED, STOP_GRACE, HubProcess

if TYPE_CHECKING:
    from celeriac.transport.hubserver import HubServer

__all__ = [
    "EmbeddedHub",
    "describe_hub",
    "embedded_hub_plan",
    "hub_in_process",
    "start_embedded_hub",
]

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

    def stop(self) -> bool:
        """Stop the hub: it finishes its turn, commits and closes its store. False if a hub
        thread is still running :data:`STOP_GRACE` s later (logged): its sockets, in the
        worker's context, are then still in use, and the context must be left alone (closing a
        socket under another thread is undefined; the process exits anyway)."""
        if isinstance(self.runner, HubProcess):
            self.runner.stop()  # SIGKILL after its grace: the child is gone either way
            return True
        self.runner.stop(timeout=STOP_GRACE)
        if self.runner.thread_alive():
            _log.warning("embedded_hub_thread_stuck", after=STOP_GRACE)
            return False
        return True


def start_embedded_hub(
    conf: Settings, ctx: zmq.Context[Any], inproc: str, *, tasks_here: bool = False
) -> EmbeddedHub | None:
    """Start the hub in this worker if ``worker_embedded_hub`` says so; None means "connect to
    ``broker_url``". A thread's hub shares ``ctx`` and also binds ``inproc`` for our worker.
    ``tasks_here``: this process runs the tasks (not a prefork parent): see
    :func:`hub_in_process`."""
    url: str = conf.broker_url
    mode: str = conf.worker_embedded_hub
    plan, reason = embedded_hub_plan(url, mode, configured=conf.is_set("broker_url"))
    if plan == "connect":
        _log.info("using_hub", endpoint=url, reason=reason)
        return None
    try:
        hub = _start(conf, ctx, inproc, hub_in_process(conf, tasks_here=tasks_here))
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


def hub_in_process(conf: Settings, *, tasks_here: bool) -> bool:
    """Whether the embedded hub runs in a child process (``worker_embedded_hub_process``).

    ``auto`` says yes where it pays: the worker runs its tasks in its own process (``tasks_here``;
    a prefork parent runs none, so its hub thread has the GIL nearly to itself) and may use two
    CPUs or more, so that the hub and the tasks each get one; and where a child can be started
    (a Python interpreter at ``sys.executable``, not a frozen program).
    """
    mode: bool | str = conf.worker_embedded_hub_process
    if isinstance(mode, bool):
        return mode
    startable = bool(sys.executable) and not getattr(sys, "frozen", False)
    return tasks_here and startable and _usable_cpus() >= 2


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. ``taskset``), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _start(conf: Settings, ctx: zmq.Context[Any], inproc: str, process: bool) -> EmbeddedHub:
    if process:
        child = HubProcess(conf)
        child.start()
        assert child.pid is not None
        return EmbeddedHub(child, child.local_endpoint, child.pid)
    # Imported here: a worker whose hub runs elsewhere (or in a child) skips the hub's
    # modules at start-up (issue 18).
    from celeriac.transport.hubserver import HubServer  # noqa: PLC0415

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
