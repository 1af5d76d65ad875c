"""The prefork parent's children: started, listened to, reaped and replaced.

How it works
------------
Each wanted slot (:class:`~.prefork_slots.Slot`) gets a child process, started with the
``spawn`` method (:meth:`ChildSupervision._spawn`) when it is due. The parent reads what each
child says on its pipe (ready, the task it starts and finishes, answers to control questions,
that it is leaving or terminating a task, gate requests) and reaps a child when its process
sentinel fires: it logs ``child_exited`` (pid, exit code or signal, the task it held) and
replaces it after the backoff of the one restart policy (:data:`~.prefork.RESTART_POLICY`). A
child that dies before it is ready counts towards the restart intensity: past it the node
gives up (``prefork_gave_up``) and stops with exit code 1.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from celeriac import signals
from celeriac._log import get_logger
from celeriac.actors.restart import Escalate, RestartTracker

from .prefork_child import ChildOptions, child_main
from .prefork_slots import Running, Slot, kill, terminate
from .prefork_types import GATE_MESSAGES, NodeGates

if TYPE_CHECKING:
    from multiprocessing.context import SpawnContext

    from .prefork_control import PreforkView

__all__ = ["ChildSupervision"]

_log = get_logger("celeriac.prefork")


class ChildSupervision:
    """The part of :class:`~.prefork.PreforkNode` that starts, hears and reaps its children."""

    _slots: list[Slot]
    _mp: SpawnContext
    _restarts: RestartTracker
    _shutdown: threading.Event
    _cold: threading.Event
    autoscale: tuple[int, int] | None
    exit_code: int
    gates: NodeGates
    hostname: str
    options: ChildOptions
    processed: Counter[str]
    ready: threading.Event
    view: PreforkView

    @property
    def concurrency(self) -> int:
        """The number of children the pool wants now (fixed unless autoscaling)."""
        return sum(1 for s in self._slots if s.wanted)

    def request_shutdown(self, cold: bool = False) -> None:
        """Begin a warm shutdown (or a cold one)."""
        if cold:
            self._cold.set()
        self._shutdown.set()

    def _start_due(self, now: float) -> None:
        for slot in self._slots:
            if slot.wanted and slot.process is None and slot.due is not None and now >= slot.due:
                self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        signals.worker_before_create_process.send(sender=self)
        parent_end, child_end = self._mp.Pipe()
        process = self._mp.Process(
            target=child_main,
            args=(slot.index, self.options, child_end, os.getpid()),
            name=f"celeriac-child-{slot.index}",
        )
        process.start()
        child_end.close()
        slot.process, slot.conn, slot.pid = process, parent_end, process.pid
        slot.ready, slot.task, slot.leaving, slot.killed, slot.due = False, None, None, None, None
        slot.kill_at = None
        slot.tasks, slot.idle_since = 0, None
        _log.info("child_started", child=slot.index, pid=process.pid)

    def _read(self, slot: Slot) -> None:
        conn = slot.conn
        assert conn is not None
        try:
            while conn.poll():
                self._on_child_message(slot, conn.recv())
        except (EOFError, OSError):
            slot.conn = None  # it is exiting: its sentinel says when
            conn.close()

    def _on_child_message(self, slot: Slot, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "started":
            _, tid, tag, name, hard, store = message
            slot.task = Running(tid, tag, name, hard, store, time.monotonic())
            slot.tasks += 1
            self.processed[name] += 1
            slot.idle_since = None
        elif kind == "finished" and not slot.killed:  # else: child_exited names the task
            slot.task = None
            slot.idle_since = time.monotonic()
        elif kind == "answer":
            self.view.child_answer(slot.index, message[1], message[2])
        elif kind == "leaving":
            slot.leaving = str(message[1])
        elif kind == "terminating":
            terminate(slot, str(message[1]), int(message[2]))
        elif kind == "settled":
            kill(slot)
        elif kind in GATE_MESSAGES:
            self.gates.on_child(slot.index, message)
        elif kind == "ready":
            slot.ready = True
            if slot.task is None:
                slot.idle_since = time.monotonic()
            if slot.died_at is not None:
                _log.info(
                    "child_replaced",
                    child=slot.index,
                    old_pid=slot.last_pid,
                    pid=slot.pid,
                    seconds=round(time.monotonic() - slot.died_at, 3),
                )
                slot.died_at = None
            if not self.ready.is_set() and all(s.ready for s in self._slots if s.wanted):
                self.ready.set()
                _log.info(
                    "worker_ready",
                    node=self.hostname,
                    pool="prefork",
                    concurrency=self.concurrency,
                    pids=[s.pid for s in self._slots if s.wanted],
                    **({"autoscale": list(self.autoscale)} if self.autoscale else {}),
                )
                signals.worker_ready.send(sender=self)

    def _reap(self, slot: Slot) -> None:
        process = slot.process
        assert process is not None
        if slot.conn is not None:
            self._read(slot)  # its last words ("finished", "leaving") come first
        process.join(1)
        code = process.exitcode
        now = time.monotonic()
        task = slot.task
        how: dict[str, Any] = (
            {"signal": signal.Signals(-code).name}
            if code is not None and code < 0
            else {"exit_code": code}
        )
        planned = slot.leaving or slot.killed
        log = _log.info if planned or self._shutdown.is_set() else _log.error
        log(
            "child_exited",
            child=slot.index,
            pid=slot.pid,
            **how,
            task_id=task.id if task else None,
            task=task.name if task else None,
            reason=planned or ("shutdown" if self._shutdown.is_set() else "died"),
        )
        if slot.conn is not None:
            slot.conn.close()
        self.gates.child_gone(slot.index)
        slot.process, slot.conn, slot.last_pid, slot.pid = None, None, slot.pid, None
        slot.task, slot.idle_since = None, None
        if self._shutdown.is_set():
            return
        if not slot.wanted:  # autoscaling shrank the pool: this slot stays empty
            slot.due, slot.died_at = None, None
            return
        slot.died_at = now
        if planned:
            slot.due = now
            return
        decision = self._restarts.failed(slot.index, counts=not slot.ready)
        if isinstance(decision, Escalate):
            self._give_up(
                f"{decision.restarts} child processes died before they were ready "
                f"within {decision.period:g} s (the last, child {slot.index}, with "
                f"{how}); more than {decision.intensity} means they cannot start: see the "
                "errors above"
            )
            return
        slot.due = decision.due

    def _give_up(self, reason: str) -> None:
        _log.critical("prefork_gave_up", node=self.hostname, reason=reason)
        self.exit_code = 1
        self.request_shutdown(cold=True)
