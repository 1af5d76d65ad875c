"""The prefork pool (``celeriac worker -P prefork -c N``): N supervised child processes.

How it works
------------
The parent process imports the app, starts the embedded hub if none answers at the broker
address, and starts N children with the ``spawn`` start method (a ZeroMQ context must never
cross a fork; spawn starts a fresh interpreter). Before each child it sends
``worker_before_create_process``. A child imports the same ``-A`` app (same cwd and sys.path),
applies the parent's command-line overrides, sets up logging, sends ``worker_process_init``
and runs a one-slot :class:`~celeriac.runtime.worker.WorkerNode` (``prefork_child=i``): its
own DEALER, its own credit at the hub, no embedded hub. It tells the parent over a pipe when
it is ready and which task it runs ("started", with the task's hard time limit) and when that
task has finished. ``worker_process_shutdown`` is sent in the child as it leaves.

Supervision
    A child that dies (segfault, ``kill -9``, OOM killer, ``os._exit``) is logged
    (``child_exited``: pid, exit code or signal, the task it held) and replaced after the
    backoff of :data:`RESTART_POLICY` (celeriac's one restart policy,
    :mod:`celeriac.actors.restart`: 25-50 ms the first time, doubling for a slot that keeps
    dying, at most 2 s). A child that dies before it is ready counts towards the restart
    intensity: more than :data:`START_FAILURES` such deaths within :data:`START_FAILURE_PERIOD`
    seconds and the node gives up, stops its children and exits 1 with a ``prefork_gave_up``
    log line saying why.

The task a dead child held
    The hub notices the lost connection (socket monitor + probe, milliseconds) and requeues
    it; after ``broker_max_deliveries`` losses it dead-letters it instead (poison message).
    With ``task_reject_on_worker_lost=False`` the child says ``on_lost: fail`` in its HELLO and
    the hub ends the task FAILURE with ``WorkerLostError`` instead. The hub decides (not this
    parent) so that the verdict cannot race the requeue.

Hard time limits and revoke with ``terminate=True``
    The parent watches each running task's hard limit; past it, or when the child says its
    task was revoked with terminate, the child ends the task itself (errbacks included) and
    says "settled" when the hub has the outcome; then the parent kills it (SIGKILL, or the
    revoke's signal) and starts a new one. See :mod:`celeriac.runtime.prefork_slots`.

Task type limits (``rate_limit``, ``max_concurrency``)
    Held by the parent for the whole node: a child asks over its pipe before it runs a task of
    a limited type (see :mod:`celeriac.runtime.prefork_types`).

Recycling
    ``worker_max_tasks_per_child``: the child stops asking for work with its last task (its
    DONE returns no credit), finishes it, says BYE and exits 0. ``worker_max_memory_per_child``
    (KiB of resident memory, checked after each task) does the same after the task that crossed
    the limit. The parent starts a fresh child at once.

Autoscaling (``--autoscale MAX,MIN``, Celery's flag)
    MIN children at first, room for MAX: one more when all have been busy for
    ``worker_autoscale_grow_after`` seconds, one fewer when one has been idle for
    ``worker_autoscale_keepalive`` (see :mod:`celeriac.runtime.prefork_autoscale`).
    :meth:`PreforkNode.statistics` shows the current count and the bounds.

Shutdown
    The first SIGTERM/SIGINT to the parent is a warm shutdown: each child is told over its pipe
    to stop consuming and finish its task, the parent waits for them all and exits 0. A second
    signal is cold: children hand their tasks back (BYE: the hub requeues them) and exit at
    once; any child still there after a second is SIGKILLed. Children ignore SIGINT (a Ctrl-C
    reaches the whole process group; the parent decides) and treat their own SIGTERM as a warm
    shutdown. A child whose parent is gone (pipe closed, or ``getppid()`` changed) exits within
    about 0.1 s, handing its task back: children are never orphaned.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from multiprocessing.connection import wait
from typing import Any, Final

import zmq

from celeriac import signals
from celeriac._app import App
from celeriac._clock import SYSTEM_CLOCK
from celeriac._log import get_logger
from celeriac.actors.restart import RestartPolicy, RestartTracker
from celeriac.exceptions import (
    ImproperlyConfigured,
)
from celeriac.routing import worker_queues
from celeriac.transport import protocol as p
from celeriac.transport.curve import CurveClient

from . import cpu_affinity
from .banner import Banner, show_banner
from .control import Panel, purge_queues
from .embedded import EmbeddedHub, describe_hub, start_embedded_hub
from .exit_guard import StopGuard
from .link import HubLink, default_node_name, new_identity
from .logging import log_format as current_log_format
from .prefork_autoscale import Autoscaler, make_room, resize
from .prefork_child import ChildOptions
from .prefork_children import ChildSupervision
from .prefork_control import PreforkView
from .prefork_link import ParentLink
from .prefork_shutdown import ParentShutdown
from .prefork_slots import Slot, enforce_time_limits, kill_overdue
from .prefork_types import NodeGates

__all__ = ["ChildOptions", "PreforkNode"]

_log = get_logger("celeriac.prefork")

#: Children that die before they are ready: more than this many within the period gives up.
START_FAILURES: Final = 5
START_FAILURE_PERIOD: Final = 30.0
#: Replacement backoff ``(min, max)`` seconds, grown per slot by its deaths within the period.
RESTART_BACKOFF: Final = (0.05, 2.0)
RESTART_PERIOD: Final = 10.0
#: All of it as one policy: only deaths before "ready" count towards the intensity.
RESTART_POLICY: Final = RestartPolicy(
    START_FAILURES, START_FAILURE_PERIOD, RESTART_BACKOFF, backoff_period=RESTART_PERIOD
)
#: The parent's loop turn (signals, time limits, restarts are looked at this often).
TURN: Final = 0.05


# -- the parent ----------------------------------------------------------------------------------


class PreforkNode(ChildSupervision, ParentShutdown):
    """The parent of a prefork worker node; see the module docstring."""

    def __init__(
        self,
        app: App,
        *,
        app_spec: str,
        concurrency: int | None = None,
        autoscale: tuple[int, int] | None = None,
        queues: list[str] | None = None,
        exclude_queues: list[str] | None = None,
        hostname: str | None = None,
        settings: dict[str, Any] | None = None,
        loglevel: str = "INFO",
        log_format: str = "auto",
        banner: bool = False,
        purge: bool = False,
    ) -> None:
        self.app = app
        #: ``worker --purge``: empty the node's queues at the hub before the children start.
        self.purge = purge
        #: Print the start-up banner (the CLI's worker does, unless --quiet).
        self.banner = banner
        self._queues = (queues, exclude_queues)
        self.settings = dict(settings or {})
        for name, value in self.settings.items():
            app.conf[name] = value
        app.import_default_modules()  # the parent needs the task types too (rate limit gates)
        app.finalize()
        self.conf = app.conf.freeze()
        self.hostname = hostname or default_node_name("celeriac")
        n = concurrency or self.conf.worker_concurrency or os.cpu_count()
        if autoscale is not None:
            high, low = autoscale
            if not 1 <= low <= high:
                raise ImproperlyConfigured(
                    f"autoscale needs MAX >= MIN >= 1 (MAX,MIN), got {high},{low}"
                )
            if concurrency is not None and concurrency != low:
                _log.warning(
                    "autoscale_overrides_concurrency",
                    concurrency=concurrency,
                    autoscale=f"{high},{low}",
                    starting=low,
                )
            n = low
        #: ``(max, min)`` children with ``--autoscale``, else None (a fixed count).
        self.autoscale = autoscale
        self.keepalive = float(self.conf.worker_autoscale_keepalive)
        self.grow_after = float(self.conf.worker_autoscale_grow_after)
        start = max(1, int(n or 1))
        room = autoscale[0] if autoscale is not None else start
        self.options = ChildOptions(
            app_spec=app_spec,
            hostname=self.hostname,
            settings=self.settings,
            queues=queues,
            exclude_queues=exclude_queues,
            loglevel=loglevel,
            log_format=log_format,
        )
        self.pool_name = "prefork"
        self.exit_code = 0
        self.ready = threading.Event()
        self._mp = multiprocessing.get_context("spawn")
        self._slots = [Slot(i, wanted=i < start) for i in range(room)]
        self._restarts = RestartTracker(RESTART_POLICY, clock=SYSTEM_CLOCK, rng=random.Random())
        self.scaler = Autoscaler(self.keepalive, self.grow_after, self._restarts.forget)
        self._shutdown = threading.Event()
        self._cold = threading.Event()
        self.stop_guard = StopGuard()  # enabled by run(guarded=True): see exit_guard.py
        self._signal_name = "SIGTERM"
        self._told: str | None = None  # what the children were told: "stop" or "cold"
        self._cold_deadline: float | None = None
        self._ctx: zmq.Context[Any] = zmq.Context()
        self._link: ParentLink | None = None
        self.hub: EmbeddedHub | None = None
        #: The task types' gates for the whole node (runtime/prefork_types.py).
        self.gates = NodeGates()
        #: Remote control (runtime/prefork_control.py): the parent answers for the node.
        self.panel = Panel()
        self.send_events = bool(self.conf.worker_send_task_events)
        self.processed: Counter[str] = Counter()  # tasks started, by name (stats "total")
        self.view = PreforkView(self)

    def statistics(self) -> dict[str, Any]:
        """Counters of the pool for ``inspect stats`` and logs (read from any thread)."""
        slots = list(self._slots)
        running = [s for s in slots if s.process is not None]
        stats: dict[str, Any] = {
            "pool": "prefork",
            "concurrency": self.concurrency,
            "processes": [s.pid for s in running if s.pid is not None],
            "busy": sum(1 for s in running if s.task is not None),
            "tasks": {s.index: s.tasks for s in slots if s.process is not None},
        }
        if self.autoscale is not None:
            high, low = self.autoscale
            stats["autoscaler"] = {
                "current": self.concurrency,
                "min": low,
                "max": high,
                "keepalive": self.keepalive,
                "grow_after": self.grow_after,
            }
        return stats

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self, *, guarded: bool = False) -> int:
        """Start the hub (if needed) and the children, supervise until shut down; exit code.

        ``guarded`` (the CLI's process): once the children are gone, the process ends within
        :data:`~.exit_guard.STUCK_AFTER` seconds whatever else hangs (:mod:`.exit_guard`)."""
        self.stop_guard.enabled = guarded
        self._install_signal_handlers()
        signals.celeryd_init.send(
            sender=self.hostname,
            instance=self,
            conf=self.conf,
            options={
                "pool": "prefork",
                "concurrency": self.concurrency,
                "autoscale": list(self.autoscale) if self.autoscale else None,
            },
        )
        signals.worker_init.send(sender=self)
        cpu_affinity.choose(self.conf.worker_cpu_affinity, "prefork")  # says it is ignored
        inproc = f"inproc://celeriac-hub-{id(self)}"
        self.hub = start_embedded_hub(self.conf, self._ctx, inproc)
        if self.banner:
            self._show_banner()
        endpoint = self.hub.local_endpoint if self.hub is not None else self.conf.broker_url
        if self.purge:  # worker --purge: before any child consumes
            purge_queues(self.conf, self.view.queues())
        identity = new_identity(f"{self.hostname}/parent")
        heartbeat = float(self.conf.broker_heartbeat)
        link = HubLink(
            self._ctx,
            endpoint,
            identity,
            CurveClient.from_settings(self.conf),
            heartbeat=heartbeat,
            now=time.monotonic(),
            strategy=self.conf.broker_failover_strategy,
            max_message_size=self.conf.broker_max_message_size,
        )
        link.probe(float(self.conf.broker_connection_timeout), time.monotonic)
        self._link = ParentLink(link, self.hostname, heartbeat, self.view)
        self.view.lifecycle("worker-online")  # the node's, for monitors (its children's are not)
        signals.celeryd_after_setup.send(sender=self.hostname, instance=self, conf=self.conf)
        self.gates.start(self.app.tasks, self.conf)
        now = time.monotonic()
        for slot in self._slots:
            slot.due = now if slot.wanted else None
        if self.autoscale is not None:
            _log.info(
                "autoscale_enabled",
                max=self.autoscale[0],
                min=self.autoscale[1],
                keepalive=self.keepalive,
                grow_after=self.grow_after,
            )
        try:
            self._supervise()
        finally:
            self._close()
        return self.exit_code

    def _show_banner(self) -> None:
        selected = worker_queues(self.conf, *self._queues)
        banner = Banner.of(
            self.app,
            node=self.hostname,
            hub=describe_hub(self.hub, self.conf.broker_url),
            pool="prefork" + (f", autoscale {self.autoscale}" if self.autoscale else ""),
            concurrency=sum(1 for slot in self._slots if slot.wanted),
            queues=[q.name for q in selected],
        )
        show_banner(banner, current_log_format())

    def _close(self) -> None:
        self.stop_guard.tasks_done()  # the children are gone: what is left must not hang
        for slot in self._slots:  # only after an error: normally all are gone already
            if slot.process is not None and slot.process.is_alive():
                with contextlib.suppress(OSError):
                    os.kill(slot.process.pid or 0, signal.SIGKILL)
                slot.process.join(5)
        if self._link is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.view.lifecycle("worker-offline")
            self._link.close()
        hub_stopped = self.hub is None or self.hub.stop()
        self.gates.stop()
        if hub_stopped:
            self._ctx.destroy(linger=0)  # not under a hub thread still running (embedded.py)
        signals.worker_shutdown.send(sender=self)
        _log.info("worker_stopped", node=self.hostname, exit_code=self.exit_code)

    # -- the supervision loop ----------------------------------------------------------------------

    def _supervise(self) -> None:
        while True:
            live = [s for s in self._slots if s.process is not None]
            waitables: list[Any] = [s.conn for s in live if s.conn is not None]
            waitables += [s.process.sentinel for s in live if s.process is not None]
            waitables.append(self.gates.waitable())
            if waitables:
                ready = wait(waitables, timeout=TURN)
            else:
                time.sleep(TURN)  # nothing to wait on: children are due for a (re)start
                ready = []
            for slot in live:
                if slot.conn is not None and slot.conn in ready:
                    self._read(slot)
            for slot in live:
                if slot.process is not None and slot.process.sentinel in ready:
                    self._reap(slot)
            self.gates.flush(self._send_child)
            now = time.monotonic()
            enforce_time_limits(self._slots, now, self._send_child)
            kill_overdue(self._slots, now)
            assert self._link is not None
            self._link.tick(now)
            if self._shutdown.is_set():
                if self._shutting_down(now):
                    return
            else:
                if self.autoscale is not None:
                    self.scaler.step(self._slots, self.autoscale, now)
                self._start_due(now)

    def _send_child(self, index: int, message: tuple[str, ...]) -> bool:
        """Send child ``index`` a message on its pipe; False if it cannot be told."""
        conn = self._slots[index].conn
        if conn is None:
            return False
        try:
            conn.send(message)
        except (OSError, ValueError):
            return False
        return True

    # -- the parent's own connection to the hub ----------------------------------------------------

    def _send(self, message: p.Message) -> None:
        assert self._link is not None
        self._link.send(message)

    def resize(self, grow: int) -> int:
        """``pool_grow``/``pool_shrink`` (see :func:`~.prefork_autoscale.resize`)."""
        resize(self._slots, grow, time.monotonic())
        _log.info("pool_resized", procs=self.concurrency, by=grow)
        return self.concurrency

    def set_autoscale(self, high: int, low: int) -> tuple[int, int]:
        """``autoscale``: new bounds (MAX >= MIN >= 1); room is made for MAX children."""
        make_room(self._slots, high, low)
        self.autoscale = (high, low)
        _log.info("autoscale_changed", max=high, min=low)
        return high, low
