"""A prefork node's child process: one :class:`~.worker.WorkerNode` of its own, started by the
parent (:mod:`.prefork`) with :class:`ChildOptions`.

How it works
------------
:func:`child_main` runs in the spawned process: it configures logging, builds its node (peer
name ``hostname/i``, no embedded hub) with the parent's task-type gates, and serves the pipe to
its parent (the tasks it starts and finishes, for time limits and autoscaling; control
questions the parent forwards; terminate requests) while its node talks to the hub itself.

An orphan exits within a second of its parent's death (issue 16: one once hung a minute in
``Context.destroy``): on Linux the kernel signals it the moment the parent dies
(``PR_SET_PDEATHSIG``), elsewhere the main loop sees the pipe close or the parent pid change
within :data:`POLL` seconds; it then starts a cold shutdown and, whatever that is stuck on,
leaves by ``os._exit`` after :data:`ORPHAN_GRACE` seconds.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from celeriac import signals
from celeriac._app import App
from celeriac._call_options import time_limits
from celeriac._log import get_logger
from celeriac.actors.task_actor import Delivery
from celeriac.actors.terminate import TaskTerminated
from celeriac.exceptions import TimeLimitExceeded
from celeriac.transport import protocol as p

from .loader import find_app  # the same -A resolution as the parent's command line
from .logging import setup_logging
from .parent_death import signal_on_parent_death
from .prefork_types import ChildGates, gated_names
from .worker import WorkerNode

__all__ = ["ChildOptions", "child_main", "hard_time_limit", "resident_kib"]

_log = get_logger("celeriac.prefork")

#: How often the main loop looks at the pipe and the parent pid (seconds).
POLL = 0.1
#: How long an orphan's cold shutdown may take before the process just exits (seconds).
ORPHAN_GRACE = 0.5
#: The signal the kernel sends a child when its parent dies (Linux ``PR_SET_PDEATHSIG``).
PARENT_DEATH_SIGNAL = signal.SIGUSR2


@dataclass(frozen=True, slots=True)
class ChildOptions:
    """What a child needs to build its node (pickled to the spawned process)."""

    app_spec: str
    hostname: str
    settings: dict[str, Any] = field(default_factory=dict)
    queues: list[str] | None = None
    exclude_queues: list[str] | None = None
    loglevel: str = "INFO"
    log_format: str = "auto"


# -- the child -----------------------------------------------------------------------------------


def hard_time_limit(app: App, message: p.TaskMessage) -> float | None:
    """The hard limit of one delivery: the message's, else the task's, else the setting."""
    _, hard = time_limits(app.tasks.get(message.task), message.timelimit, app.conf)
    return float(hard) if hard else None


def resident_kib() -> int:
    """This process's resident memory in KiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        import resource  # noqa: PLC0415 - fallback only

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class _Child:
    """The main thread of a child process: its node, its pipe to the parent, its exit."""

    def __init__(self, index: int, opts: ChildOptions, conn: Connection, parent_pid: int) -> None:
        self.index = index
        self.opts = opts
        self.conn = conn
        self.parent_pid = parent_pid
        self._send_lock = threading.Lock()
        self._told_ready = False
        self._early_sigterm = False
        self._orphaned = False
        self.tasks = 0
        self.node: WorkerNode | None = None
        self.max_tasks: int | None = None
        self.max_memory: int | None = None
        #: Set when the parent is about to signal this child to stop a revoked task.
        self.terminating: int | None = None

    def tell(self, *message: Any) -> None:
        """Send the parent a message; "ready" goes first, once (a task implies it)."""
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            if not self._told_ready:
                self._told_ready = True
                self.conn.send(("ready", os.getpid()))
            if message[0] != "ready":
                self.conn.send(message)

    def run(self) -> int:
        app = find_app(self.opts.app_spec)
        for name, value in self.opts.settings.items():
            app.conf[name] = value
        self.max_tasks = app.conf.worker_max_tasks_per_child
        self.max_memory = app.conf.worker_max_memory_per_child
        signals.worker_process_init.send(sender=None)
        node = self.node = WorkerNode(
            app,
            queues=self.opts.queues,
            exclude_queues=self.opts.exclude_queues,
            pool="solo",
            hostname=self.opts.hostname,
            prefork_child=self.index,
        )
        node.on_task_start = self._started
        node.on_task_end = self._finished
        node.on_terminate = self._terminate
        node.on_settled = lambda task_id: self.tell("settled", task_id)
        node.on_control_answer = self._answer
        names = gated_names(app.tasks, node.conf)  # limited types ask the parent's gates
        node.make_types = lambda: ChildGates(names, self.tell)
        if self._early_sigterm:
            node.request_shutdown()
        node.start()
        while not node._shutdown.is_set():
            if not self._told_ready and node.ready.is_set():
                self.tell("ready", os.getpid())
            try:
                if self.conn.poll(POLL):
                    self._command(self.conn.recv())
            except (EOFError, OSError):
                self._parent_gone("its pipe closed")
            if os.getppid() != self.parent_pid:
                self._parent_gone(f"parent pid changed to {os.getppid()}")
            thread = node._thread
            if thread is not None and not thread.is_alive() and not node._shutdown.is_set():
                _log.error("child_connection_died", child=self.index)
                node.exit_code = 1
                node.request_shutdown(cold=True)
        node.stop_guard.enabled = True  # a process of ours: its stop must not hang
        code = node.stop()
        signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=code)
        return code

    def _command(self, message: Any) -> None:
        assert self.node is not None
        if message == ("stop",):
            self.node.request_shutdown()
        elif message == ("cold",):
            self.node.request_shutdown(cold=True)
        elif isinstance(message, tuple) and message[:1] == ("expire",):
            self._cut_short(message[1], TimeLimitExceeded(message[2]))  # the parent kills next
        elif isinstance(message, tuple) and message[:1] == ("release",):
            self.node.release_tag(message[1])  # the parent's gate lets a gated delivery run
        elif isinstance(message, tuple) and message[:1] == ("control",):
            self.node.control_local(message[1], message[2])  # forwarded by the parent
        elif isinstance(message, tuple) and message[:1] == ("ask",):
            self.node.control_local(message[2], message[3], ask=message[1])  # answer expected

    def _answer(self, ask: int, answer: Any) -> None:
        """The answer to a command the parent asked (``inspect active``...), over the pipe."""
        try:
            pickle.dumps(answer)
        except Exception as exc:
            answer = {"error": f"unpicklable answer: {exc!r}"[:300]}
        self.tell("answer", ask, answer)

    def _parent_gone(self, why: str) -> None:
        if self._orphaned:
            return
        self._orphaned = True
        _log.warning("child_parent_gone", child=self.index, reason=why)
        # Nobody is left to wait for this process: a stuck socket or task must not keep it.
        deadline = threading.Timer(ORPHAN_GRACE, os._exit, (1,))
        deadline.daemon = True
        deadline.start()
        if self.node is None:
            os._exit(1)  # not started yet: nothing to stop
        self.node.request_shutdown(cold=True)

    def on_parent_death(self, _signum: int, _frame: object) -> None:
        """The kernel's ``PR_SET_PDEATHSIG``: sent when the thread that started us ends, which
        is the parent's death only if our parent pid changed (checked here)."""
        if os.getppid() != self.parent_pid:
            self._parent_gone("the parent died (signalled by the kernel)")

    def on_sigterm(self, _signum: int, _frame: object) -> None:
        """SIGTERM: a warm shutdown; a second one: cold; from the parent stopping a revoked
        task (``terminate=True``): die of it at once."""
        if self.terminating is not None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        elif self.node is None:
            self._early_sigterm = True  # not started yet: stop as soon as it is
        else:
            self.node.request_shutdown(cold=self.node._shutdown.is_set())

    # -- hooks, run in the node's connection thread

    def _started(self, delivery: Delivery) -> None:
        assert self.node is not None
        message = delivery.task
        self.tasks += 1
        if self.max_tasks is not None and self.tasks >= self.max_tasks:
            self.node.accepting = False  # the DONE of this task returns no credit
        self.tell(
            "started",
            message.id,
            delivery.delivery_tag,
            message.task,
            hard_time_limit(self.node.app, message),
            not message.ignore_result,
        )

    def _terminate(self, task_id: str, signum: int) -> None:
        """A running task was revoked with terminate: we end it, the parent signals us."""
        self.terminating = signum
        self.tell("terminating", task_id, signum)
        self._cut_short(task_id, TaskTerminated(signum))

    def _cut_short(self, task_id: str, exc: BaseException) -> None:
        """End the running ``task_id`` with ``exc`` (its outcome, errbacks included, goes to
        the hub from here: see WorkerNode.cut_short); the parent kills this process when the
        hub has it ("settled"). In a thread of its own: the errbacks' publishes wait."""
        assert self.node is not None
        session = self.node.session
        busy = list(session.busy.items()) if session is not None else []
        running = next(((i, d) for i, d in busy if d.task.id == task_id), None)
        if running is None:  # finished meanwhile: its own outcome went out
            self.tell("settled", task_id)
            return
        threading.Thread(
            target=self.node.cut_short,
            args=(*running, exc),
            name="celeriac-cut-short",
            daemon=True,
        ).start()

    def _finished(self, delivery: Delivery) -> None:
        assert self.node is not None
        self.tell("finished", delivery.task.id)
        reason = None
        if self.max_tasks is not None and self.tasks >= self.max_tasks:
            reason = f"ran {self.tasks} tasks (worker_max_tasks_per_child)"
        elif self.max_memory is not None and (rss := resident_kib()) > self.max_memory:
            reason = f"resident memory {rss} KiB > {self.max_memory} KiB (max_memory_per_child)"
        if reason is not None:
            _log.info("child_recycling", child=self.index, pid=os.getpid(), reason=reason)
            self.tell("leaving", reason)
            self.node.accepting = False
            self.node.request_shutdown()


def child_main(index: int, opts: ChildOptions, conn: Connection, parent_pid: int) -> None:
    """Entry point of a spawned child (module level: it is pickled by reference)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging(opts.loglevel, opts.log_format)
    code = 1
    try:
        child = _Child(index, opts, conn, parent_pid)
        signal.signal(signal.SIGTERM, child.on_sigterm)
        signal.signal(PARENT_DEATH_SIGNAL, child.on_parent_death)
        signal_on_parent_death(PARENT_DEATH_SIGNAL)
        if os.getppid() != parent_pid:  # it died before the kernel was told to say so
            child._parent_gone(f"parent pid changed to {os.getppid()}")
        code = child.run()
    except BaseException:
        _log.exception("child_failed", child=index)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        # Not sys.exit: a task thread still running (cold shutdown) must not keep us alive.
        os._exit(code)
