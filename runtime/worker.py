"""The worker node: connection to the hub, execution slots, embedded hub, clean shutdown.

How it works
------------
``WorkerNode.start()`` first decides whether this node runs the hub itself, in a thread or a
child process (the *embedded hub*, see :mod:`.embedded`: by default only for a loopback broker
address nobody listens on), or connects to ``broker_url``; until a hub answers there it logs
``waiting_for_hub`` every so often, and connects by itself when one appears.

The connection thread (:mod:`.connection`) owns the DEALER socket to the hub and the node's
inbox (:mod:`.inbox`: a queue the slot actors put their outcomes in, and an eventfd doorbell);
the protocol logic is the node's sans-IO :class:`~celeriac.transport.session.WorkerSession`,
kept across connection restarts. It announces the queues it consumes and its credit (slots x
``worker_prefetch_multiplier``), hands each delivery to a free slot actor, or to a busy one to
wait in it (a pykka ``tell``; run-ahead), and forwards the outcomes as
``DONE`` (acknowledgement + one credit back each). It pings the hub every ``broker_heartbeat``
seconds; a hub that answers as a stranger (it restarted) gets a fresh ``HELLO`` listing the
tasks still held here, so they are not delivered twice.

Shutdown: the first SIGTERM/SIGINT stops consuming (``CONSUME []``), gives buffered deliveries
back (``REJ`` requeue), lets running tasks finish, says ``BYE`` and exits. A second signal exits
at once; the hub requeues whatever had not been acknowledged.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import zmq

from celeriac import signals
from celeriac._app import App
from celeriac._log import get_logger
from celeriac._serialization import normalize_accept
from celeriac.actors.execution import TaskExecutor
from celeriac.actors.outcome import TaskOutcome
from celeriac.actors.pool import Pool, PoolFactory, PoolWiring, ThreadPool
from celeriac.actors.task_actor import Delivery
from celeriac.actors.tasktype import TaskTypes, TypeGates
from celeriac.actors.terminate import TERMINATIONS, signal_number
from celeriac.exceptions import ImproperlyConfigured
from celeriac.routing import Broadcast, declare_queues, worker_queues
from celeriac.transport import protocol as p
from celeriac.transport.session import WorkerSession

from . import cpu_affinity, django_fixup
from .asyncpool import AsyncPool
from .banner import Banner, show_banner
from .connection import run_connection
from .control import Panel, purge_queues
from .embedded import EmbeddedHub, describe_hub, start_embedded_hub
from .exit_guard import StopGuard
from .inbox import Inbox
from .keyed import KeyedLink, host_queues
from .link import default_node_name
from .logging import log_format
from .outcomes import outcome_frames

__all__ = ["WorkerNode"]

_log = get_logger("celeriac.worker")

#: In-process pools by ``-P`` name (solo is a threads pool of one slot).
POOLS: dict[str, PoolFactory] = {"threads": ThreadPool, "solo": ThreadPool, "asyncio": AsyncPool}


def _in_process_pool(pool: str) -> str:
    """``pool`` if a node runs it in this process (threads, solo, asyncio), else a clear error."""
    if pool == "prefork":
        raise ImproperlyConfigured(
            "the prefork pool runs child processes: start it with `celeriac worker -P prefork`"
            " (celeriac.runtime.prefork.PreforkNode); in-process nodes use threads or solo"
        )
    if pool not in POOLS:
        raise ImproperlyConfigured(f"pool {pool!r} is not available here; use {sorted(POOLS)}")
    return pool


class WorkerNode:
    """A worker process: see the module docstring."""

    def __init__(
        self,
        app: App,
        *,
        queues: list[str] | None = None,
        exclude_queues: list[str] | None = None,
        concurrency: int | None = None,
        pool: str | None = None,
        hostname: str | None = None,
        prefork_child: int | None = None,
        banner: bool = False,
        purge: bool = False,
    ) -> None:
        self.app = app
        app.import_default_modules()  # imports, include, autodiscover_tasks (Celery's loader)
        app.finalize()
        django_fixup.install()  # Django configured: close old DB connections around tasks
        self.conf = app.conf.freeze()
        self.hostname = hostname or default_node_name("celeriac")
        #: Set in child ``i`` of a prefork node: no embedded hub, peer name ``hostname/i``, and
        #: the node lifecycle signals are left to the parent (it sends them once).
        self.prefork_child = prefork_child
        #: Print the start-up banner (the CLI's worker does, unless --quiet).
        self.banner = banner
        self.peer_name = (
            self.hostname if prefork_child is None else f"{self.hostname}/{prefork_child}"
        )
        #: Called in the connection thread when a delivery is handed to a slot / has finished.
        self.on_task_start: Callable[[Delivery], None] | None = None
        self.on_task_end: Callable[[Delivery], None] | None = None
        #: Called in the connection thread to stop a running task revoked with terminate
        #: (task id, signal number); None: stop it in this process (actors/terminate.py). A
        #: prefork child sets it: its parent signals the child's process.
        self.on_terminate: Callable[[str, int], None] | None = None
        #: Called in the connection thread when the hub has processed the outcome of a task
        #: cut short (:meth:`cut_short`), with its id (a prefork child tells its parent).
        self.on_settled: Callable[[str], None] | None = None
        #: Where the answer of a command forwarded with an ask id goes (a prefork child's pipe).
        self.on_control_answer: Callable[[int, Any], None] | None = None
        self.pool_name = pool = _in_process_pool(pool or self.conf.worker_pool)
        n = 1 if pool == "solo" else (concurrency or self.conf.worker_concurrency or os.cpu_count())
        self.concurrency = max(1, int(n or 1))
        selected = worker_queues(self.conf, queues, exclude_queues)
        #: The queue names this node consumes (a Broadcast queue becomes this node's own copy).
        self.queues = [
            q.node_queue(self.hostname).name if isinstance(q, Broadcast) else q.name
            for q in selected
        ] + host_queues(app.actors)
        exchanges, declared = declare_queues(self.conf, selected, node_name=self.hostname)
        self.declarations = p.declaration(exchanges, declared)
        self.prefetch = self.concurrency * int(self.conf.worker_prefetch_multiplier)
        #: The node's session with its hub (sans-IO: transport/session/worker.py), made when the
        #: connection thread starts and kept across connection restarts.
        self.session: WorkerSession | None = None
        self._accepting = True
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self._shutdown = threading.Event()
        self._cold = threading.Event()
        #: Bounds :meth:`stop` once ``run(guarded=True)`` enabled it (:mod:`.exit_guard`).
        self.stop_guard = StopGuard()
        self._ctx: zmq.Context[Any] = zmq.Context()
        #: How the node's other threads reach the connection thread (runtime/inbox.py).
        self.inbox = Inbox()
        self.hub: EmbeddedHub | None = None
        self._make_executor: Callable[[], TaskExecutor] | None = None
        self.hub_endpoint: str = self.conf.broker_url
        self.pool: Pool | None = None
        #: The gates of the task types with a rate limit or a cap (actors/tasktype.py); a
        #: prefork child sets ``make_types`` to use its parent's, held for the whole node.
        self.types: TypeGates = TaskTypes({})
        self.make_types: Callable[[], TypeGates] | None = None
        self.exit_code = 0
        self.connection_restarts = 0
        self._thread: threading.Thread | None = None
        #: Remote control and events (issue 9, runtime/control.py, runtime/worker_control.py).
        self.panel = Panel()
        self.send_events = bool(self.conf.worker_send_task_events)
        #: ``worker --purge``: empty this node's queues at the hub before consuming.
        self.purge = purge
        self.processed: Counter[str] = Counter()
        self.started_at: dict[int, float] = {}
        #: The keyed actors hosted here (``@app.actor`` classes: see runtime/keyed.py).
        self.keyed = KeyedLink(self)

    @property
    def accepting(self) -> bool:
        """Whether this node takes new work (False from a warm shutdown, or a prefork child's
        last task): its outcomes then return no credit. The session's flag once it exists."""
        session = self.session
        return self._accepting if session is None else session.accepting

    @accepting.setter
    def accepting(self, value: bool) -> None:
        self._accepting = value
        if self.session is not None:
            self.session.accepting = value

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the embedded hub if needed, the slots and the connection thread."""
        self._signal(
            signals.celeryd_init,
            sender=self.hostname,
            instance=self,
            conf=self.conf,
            options={
                "queues": self.queues,
                "pool": self.pool_name,
                "concurrency": self.concurrency,
            },
        )
        self._signal(signals.worker_init, sender=self)
        # Chosen before anything starts (a CPU list it may not use stops it here, cleanly),
        # set once everything has started (the embedded hub's process keeps every CPU).
        cpus = (
            cpu_affinity.choose(self.conf.worker_cpu_affinity, self.pool_name)
            if self.prefork_child is None
            else None
        )
        inproc = f"inproc://celeriac-hub-{id(self)}"
        if self.prefork_child is None:
            self.hub = start_embedded_hub(self.conf, self._ctx, inproc, tasks_here=True)
        # The embedded hub listens for us at a local address too (no TCP).
        self.hub_endpoint = self.hub.local_endpoint if self.hub else self.conf.broker_url
        if self.purge:
            purge_queues(self.conf, self.queues)
        if self.banner:
            show_banner(
                Banner.of(
                    self.app,
                    node=self.hostname,
                    hub=describe_hub(self.hub, self.conf.broker_url),
                    pool=self.pool_name,
                    concurrency=self.concurrency,
                    queues=self.queues,
                ),
                log_format(),
            )
        accept = normalize_accept(self.conf.accept_content)

        def make_executor() -> TaskExecutor:
            executor = TaskExecutor(
                self.app,
                hostname=self.hostname,
                accept=accept,
                result_serializer=self.conf.result_serializer,
                ignore_result_default=bool(self.conf.task_ignore_result),
            )
            # In a prefork child the parent kills the process at the hard limit; an in-thread
            # TimeLimitExceeded could let a pure-Python loop survive instead.
            executor.enforce_hard_limit = self.prefork_child is None
            executor.state_sink = self.send_to_hub  # update_state (issue 10)
            return executor

        self._make_executor = make_executor
        wiring = PoolWiring(
            make_executor,
            self._reply,
            self.inbox.lost,
            on_escalate=self._escalate,
            clock=self.app.clock,
        )
        self.types = (
            self.make_types()
            if self.make_types
            else TaskTypes.start(
                self.app.tasks,
                self.conf,
                lambda delivery: self.inbox.release(delivery.delivery_tag),
                clock=self.app.clock,
            )
        )
        self.pool = POOLS[self.pool_name](self.concurrency, wiring)
        self.pool.start()
        # No HELLO (credit) before every slot can take a delivery.
        if not self.pool.wait_ready(30):
            raise ImproperlyConfigured(f"the {self.pool_name} pool did not start within 30s")
        self._signal(
            signals.celeryd_after_setup, sender=self.hostname, instance=self, conf=self.conf
        )
        self._thread = threading.Thread(target=self._run, name="celeriac-connection", daemon=True)
        self._thread.start()
        # The threads it starts from now on take the CPUs too.
        cpu_affinity.apply(cpus, self.conf.worker_cpu_affinity)

    def run(self, *, guarded: bool = False) -> int:
        """Start, serve until SIGTERM/SIGINT, shut down cleanly; the process exit code.

        ``guarded`` (the CLI's worker process): once the tasks are done, the process ends within
        :data:`~.exit_guard.STUCK_AFTER` seconds whatever else hangs (:mod:`.exit_guard`)."""
        self._install_signal_handlers()
        self.stop_guard.enabled = guarded
        self.start()
        # This process is the node's: what start-up made (modules, tasks, the pool) lives as
        # long as it does. Out of the collector's way, a full collection walks only what tasks
        # left (13 ms -> 1 ms, once every ~30,000 tasks under load: benchmarks/cpu_split.py).
        gc.freeze()
        while not self._shutdown.wait(0.5):
            if self._thread is not None and not self._thread.is_alive():
                _log.error("connection_thread_died")
                self.exit_code = self.exit_code or 1
                break
        return self.stop()

    def request_shutdown(self, cold: bool = False) -> None:
        """Begin a warm shutdown (or a cold one)."""
        if cold:
            self._cold.set()
        self._shutdown.set()

    def stop(self) -> int:
        """Stop consuming, let running tasks finish (unless cold), leave, stop everything."""
        self._shutdown.set()
        self._signal(
            signals.worker_shutting_down,
            sender=self.hostname,
            sig="SIGTERM",
            how="warm",
            exitcode=0,
        )
        self.stop_guard.stopping(float(self.conf.worker_shutdown_timeout))
        if self._thread is not None:
            self._thread.join()
        self.stop_guard.tasks_done()
        self.types.stop()
        self.keyed.stop()
        if self.pool is not None:
            self.pool.stop(wait=not self._cold.is_set())
        if self.hub is None or self.hub.stop():
            self._ctx.destroy(linger=0)  # not under a hub thread still running (embedded.py)
        self._signal(signals.worker_shutdown, sender=self)
        self.stopped.set()
        _log.info(
            "worker_stopped" if self.prefork_child is None else "child_stopped",
            node=self.peer_name,
            exit_code=self.exit_code,
        )
        return self.exit_code

    def revoke_held(self, msg: p.RevokeHeld) -> None:
        """The hub says tasks this node holds were revoked: those not started end REVOKED when
        a slot takes them; with ``terminate`` a running one is stopped (actors/terminate.py)."""
        signum = signal_number(msg.signal)
        for task_id in msg.ids:
            TERMINATIONS.revoke(task_id)
            if not msg.terminate:
                continue
            if self.on_terminate is not None:
                self.on_terminate(task_id, signum)
            elif TERMINATIONS.terminate(task_id, signum):
                _log.info("task_terminating", task_id=task_id, signum=signum)

    def cut_short(self, slot: int, delivery: Delivery, exc: BaseException) -> None:
        """End ``delivery``, still running in ``slot``, with ``exc`` as if it had raised it
        there (the executor's outcome, errbacks included: a :class:`TaskTerminated` ends it
        REVOKED), through the slot's usual outcome path; then ask the hub to confirm it has it
        (:attr:`on_settled`). The node takes no new work after this: a prefork child does it
        just before its parent kills it (hard time limit, revoke with terminate). Any thread."""
        self.accepting = False  # this process is about to go: no new work, no credit back
        assert self._make_executor is not None, "the node has not started"
        self._reply(slot, self._make_executor().cut_short(delivery, exc))
        self.inbox.settle(delivery.task.id)

    def _signal(self, which: signals.Signal, /, **kwargs: Any) -> None:
        """Send a node lifecycle signal (a prefork child leaves them to its parent)."""
        if self.prefork_child is None:
            which.send(**kwargs)

    def _escalate(self, reason: str) -> None:
        """The root supervisor gave up: log why and stop the node with a non-zero exit."""
        _log.critical("supervisor_gave_up", node=self.hostname, reason=reason)
        self.exit_code = 1
        self.request_shutdown(cold=True)

    def _install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            if self._shutdown.is_set():
                _log.warning("cold_shutdown", signal=signal.Signals(signum).name)
                self._cold.set()
                self.stop_guard.second_signal()
            else:
                _log.info(
                    "warm_shutdown",
                    signal=signal.Signals(signum).name,
                    hint="send it again for a cold shutdown",
                )
                self._shutdown.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    # -- other threads -> the connection thread (runtime/inbox.py) ---------------------------------

    def _reply(self, index: int, outcome: TaskOutcome) -> None:
        credit = 1 if self.accepting else 0
        max_size = self.conf.broker_max_message_size  # the frozen settings: 0.5 us less a task
        self.inbox.outcome(index, outcome_frames(outcome, credit=credit, max_size=max_size))

    def send_to_hub(self, message: p.Message) -> None:
        """Have the connection thread send ``message`` to the hub (any thread)."""
        self.inbox.send(message)

    def release_tag(self, tag: str) -> None:
        """Let the gated delivery ``tag`` run (any thread; a prefork child's main thread)."""
        self.inbox.release(tag)

    def control_local(
        self, command: str, arguments: dict[str, Any], ask: int | None = None
    ) -> None:
        """Run a control command in the connection thread (a prefork parent forwards commands
        to its children this way); with ``ask``, its answer goes to :attr:`on_control_answer`
        under that id. Safe from any thread."""
        self.inbox.control(command, arguments, ask)

    # -- the connection thread ---------------------------------------------------------------------

    def _run(self) -> None:
        """The connection thread (supervised in place: see :func:`.connection.run_connection`)."""
        run_connection(self)
