"""Keyed actors in a worker: one pykka actor per live key, each holding the user's instance.

How it works
------------
The worker's connection hands this :class:`KeyedHost` what the hub says about keys placed on it
(``transport/hub/actors.py``): ``activate(queue, state)`` before the first delivery of a
placement, ``deliver(delivery)`` for each call, ``stop(queue)`` when the hub agreed the key is
idle. Each key is one :class:`KeyActor` (a pykka thread): calls run there one at a time (the
hub sends the next only after this one's outcome anyway), so the user's instance never sees two
calls at once and needs no lock.

Bounded: at most ``max_instances`` live keys (``actor_max_instances``). A call for a new key
over it picks the least recently used idle instance (:meth:`KeyedHost.admit`) for the runtime to
offer back to the hub (``KEYED_IDLE``; its ``KEYED_STOP`` stops it, as after an idle timeout:
its state was saved after its last call); with every instance running a call, the new key is
refused. Each instance offered back is a different one, so live keys never pass twice the cap.

A call: build the instance if there is none (``cls(key)`` then ``load_state(state)`` with the
state the hub stored), decode the arguments, run the public method named by the task, encode the
result, then ``save_state()`` if the class has it. The outcome and the saved state go to
``report`` (the runtime turns them into ``KEYED_SAVE`` then ``DONE``). A method that raises is a
FAILURE outcome like a task's, and the instance lives on.

Supervision: an exception in the constructor or a state hook means the instance cannot be
trusted. It is dropped (``actor_failed`` signal, ``actor_restarted`` log) and built again from the
last saved state after the restart policy's backoff; more than ``intensity`` failures within
``period`` seconds escalate: that call fails with the hook's exception (``actor_gave_up``), and
the next call starts again with a fresh count. A ``save_state`` failure fails the call (its
effect is not durable) and restarts the instance from the last state saved.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import pykka

from celeriac import signals, states
from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._keyed import MAX_INSTANCES
from celeriac._log import get_logger
from celeriac._protocol import Delivery, split_keyed_queue
from celeriac._protocol_keyed import MAX_STATE
from celeriac._serialization import dumps, loads
from celeriac.exceptions import CeleriacError

from .outcome import TaskOutcome, failure_outcome
from .restart import Escalate, RestartPolicy, RestartTracker

__all__ = ["KEYED_POLICY", "KeyActor", "KeyedHost", "Report"]

_log = get_logger("celeriac.worker")

#: A key's instance may fail to build this often within the period before a call gives up.
KEYED_POLICY = RestartPolicy(3, 10.0, backoff=(0.05, 1.0))

#: ``report(queue, outcome, state)``: a call finished; ``state`` is the packed saved state.
Report = Callable[[str, TaskOutcome, bytes | None], None]


class StateTooLargeError(CeleriacError):
    """``save_state`` returned more than :data:`~celeriac._protocol_keyed.MAX_STATE` bytes."""


@dataclass(frozen=True)
class _Wiring:
    cls: type
    key: str
    report: Report
    accept: frozenset[str]
    serializer: str
    clock: Clock
    on_exit: Callable[[], None] | None = None


class _HookFailed(Exception):
    def __init__(self, hook: str, error: BaseException, trace: str) -> None:
        super().__init__(hook, error)
        self.hook, self.error, self.trace = hook, error, trace


class KeyActor(pykka.ThreadingActor):
    """The actor of one key: builds, supervises and calls the user's instance."""

    def __init__(self, wiring: _Wiring, state: bytes | None) -> None:
        super().__init__()
        self.w = wiring
        self.state = state
        self.instance: Any = None
        self.restarts = RestartTracker(KEYED_POLICY, clock=wiring.clock)
        self._pause = threading.Event()

    def on_receive(self, message: Any) -> Any:
        """One call (a delivery), always reported, never raising out of the actor."""
        try:
            self._call(message)
        except Exception:  # never let a tell kill the actor (pykka drops the mailbox)
            _log.exception("actor_internal_error", key=self.w.key)

    def on_stop(self) -> None:
        """The key stopped (idle, replaced, shutdown): ``actor_stopped``, free the thread's
        resources."""
        if self.instance is not None:
            self._stopped("stopped")
        if self.w.on_exit is not None:
            self.w.on_exit()  # this thread's resources (the worker's outcome socket)

    def _stopped(self, reason: str) -> None:
        signals.actor_stopped.send(
            sender=self.w.cls, key=self.w.key, instance=self.instance, reason=reason
        )
        self.instance = None

    # -- a call --------------------------------------------------------------------------------

    def _call(self, delivery: Delivery) -> None:
        try:
            self._ensure_instance()
        except _HookFailed as failed:
            self._report(self._failure(delivery, failed.error, failed.trace), None)
            return
        outcome = self._run(delivery)
        state = None
        if hasattr(self.w.cls, "save_state"):
            try:
                state = self._save()
            except _HookFailed as failed:
                self._hook_failed(failed)
                outcome = self._failure(delivery, failed.error, failed.trace)
        self._report(outcome, state)

    def _report(self, outcome: TaskOutcome, state: bytes | None) -> None:
        self.w.report(self.w.key, outcome, state)

    def _run(self, delivery: Delivery) -> TaskOutcome:
        m = delivery.task
        method = m.task.rpartition(".")[2]
        try:
            if method.startswith("_") or not callable(getattr(self.w.cls, method, None)):
                raise AttributeError(f"actor {self.w.cls.__qualname__} has no method {method!r}")
            args, kwargs, _embed = loads(m.body, m.content_type, self.w.accept)
            retval = getattr(self.instance, method)(*args, **kwargs)
            ct, body = dumps(retval, self.w.serializer)
        except Exception as exc:
            _log.info("actor_call_failed", key=self.w.key, method=method, error=repr(exc))
            return self._failure(delivery, exc, traceback.format_exc())
        store = m.ignore_result is not True
        return TaskOutcome(m.id, delivery.tag, states.SUCCESS, ct, body, store)

    def _failure(self, delivery: Delivery, exc: BaseException, trace: str | None) -> TaskOutcome:
        m = delivery.task
        store = m.ignore_result is not True
        return failure_outcome(
            m.id, delivery.tag, exc, trace, serializer=self.w.serializer, store=store
        )

    # -- instance and hooks ------------------------------------------------------------------------

    def _ensure_instance(self) -> None:
        """Build the instance, restarting after a failed hook; _HookFailed when escalated."""
        while self.instance is None:
            try:
                self._build()
            except _HookFailed as failed:
                decision = self._hook_failed(failed)
                if isinstance(decision, Escalate):
                    _log.error("actor_gave_up", key=self.w.key, restarts=decision.restarts)
                    self.restarts = RestartTracker(KEYED_POLICY, clock=self.w.clock)
                    raise
                self._pause.wait(decision.delay)

    def _build(self) -> None:
        cls, key = self.w.cls, self.w.key
        instance = _hook("__init__", cls, key)
        if self.state is not None and hasattr(cls, "load_state"):
            _hook("load_state", instance.load_state, msgpack.unpackb(self.state, raw=False))
        self.instance = instance
        signals.actor_started.send(sender=cls, key=key, instance=instance)
        _log.info("actor_started", actor=cls.__qualname__, key=key)

    def _save(self) -> bytes:
        value = _hook("save_state", self.instance.save_state)
        try:
            packed: bytes = msgpack.packb(value, use_bin_type=True)
        except (TypeError, ValueError) as exc:
            raise _HookFailed("save_state", exc, traceback.format_exc()) from None
        if len(packed) > MAX_STATE:
            big = StateTooLargeError(f"saved state of {len(packed)} bytes > {MAX_STATE}")
            raise _HookFailed("save_state", big, "")
        self.state = packed
        return packed

    def _hook_failed(self, failed: _HookFailed) -> Escalate | Any:
        if self.instance is not None:
            self._stopped("restart")
        decision = self.restarts.failed(self.w.key)
        restarts = getattr(decision, "restarts", None)
        signals.actor_failed.send(
            sender=self.w.cls,
            key=self.w.key,
            exception=failed.error,
            hook=failed.hook,
            restarts=restarts,
        )
        _log.warning(
            "actor_restarted",
            actor=self.w.cls.__qualname__,
            key=self.w.key,
            hook=failed.hook,
            error=repr(failed.error),
        )
        return decision


def _hook(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise _HookFailed(name, exc, traceback.format_exc()) from None


class KeyedHost:
    """The live keys of one worker (connection thread API, thread-safe); see the docstring."""

    def __init__(
        self,
        classes: dict[str, type],
        report: Report,
        *,
        accept: frozenset[str],
        serializer: str,
        idle_timeout: float,
        clock: Clock = SYSTEM_CLOCK,
        on_thread_exit: Callable[[], None] | None = None,
        max_instances: int = MAX_INSTANCES,
    ) -> None:
        self.classes = classes
        self.max_instances = max_instances
        self._report = report
        self.accept, self.serializer = accept, serializer
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.on_thread_exit = on_thread_exit
        self._lock = threading.Lock()
        self._actors: dict[str, pykka.ActorRef[Any]] = {}
        self._states: dict[str, bytes | None] = {}
        self._busy: set[str] = set()
        self._last: dict[str, float] = {}
        #: Idle keys offered back to the hub to make room (until it stops them or a call comes).
        self._evicting: set[str] = set()

    def admit(self, queue: str) -> tuple[bool, str | None]:
        """Whether a call for ``queue`` may run here now, and the idle key to give up for it
        (the least recently used) when the worker is at ``max_instances``."""
        with self._lock:
            if queue in self._actors or len(self._actors) < self.max_instances:
                return True, None
            idle = [q for q in self._actors if q not in self._busy and q not in self._evicting]
            if not idle:
                return False, None
            lru = min(idle, key=lambda q: self._last.get(q, 0.0))
            self._evicting.add(lru)
            return True, lru

    def activate(self, queue: str, state: bytes | None) -> None:
        """The hub placed ``queue`` here: (re)build it from ``state`` at its next call."""
        with self._lock:
            old = self._actors.pop(queue, None)
            self._states[queue] = state
        if old is not None:
            old.stop(block=False)

    def deliver(self, delivery: Delivery) -> bool:
        """Run a call on its key's instance; False if this worker does not host its class."""
        queue = delivery.queue
        cls_name, key = split_keyed_queue(queue)
        cls = self.classes.get(cls_name)
        if cls is None:
            return False
        with self._lock:
            ref = self._actors.get(queue)
            if ref is None:
                wiring = _Wiring(
                    cls,
                    key,
                    self._reported(queue),
                    self.accept,
                    self.serializer,
                    self.clock,
                    self.on_thread_exit,
                )
                ref = KeyActor.start(wiring, self._states.pop(queue, None))
                self._actors[queue] = ref
            self._busy.add(queue)
            self._evicting.discard(queue)  # a call came: the hub did not stop it
            self._last[queue] = self.clock.monotonic()
        ref.tell(delivery)
        return True

    def _reported(self, queue: str) -> Report:
        def report(_key: str, outcome: TaskOutcome, state: bytes | None) -> None:
            with self._lock:
                self._busy.discard(queue)
                self._last[queue] = self.clock.monotonic()
            self._report(queue, outcome, state)

        return report

    def stop(self, queue: str) -> None:
        """The hub agreed ``queue`` is idle and no longer placed here."""
        with self._lock:
            ref = self._actors.pop(queue, None)
            self._states.pop(queue, None)
            self._last.pop(queue, None)
            evicted = queue in self._evicting
            self._evicting.discard(queue)
        if ref is not None:
            ref.stop(block=False)
            _log.info("actor_stopped", key=queue, reason="evicted" if evicted else "idle")

    def idle(self) -> list[str]:
        """Keys idle for ``idle_timeout`` (each said again one timeout later if still idle)."""
        now = self.clock.monotonic()
        found = []
        with self._lock:
            for queue, last in self._last.items():
                if queue not in self._busy and now - last >= self.idle_timeout:
                    found.append(queue)
                    self._last[queue] = now
        return found

    def stop_all(self) -> None:
        """Stop every instance (worker shutdown)."""
        with self._lock:
            refs = list(self._actors.values())
            self._actors.clear()
        for ref in refs:
            ref.stop(block=True, timeout=5)

    def running(self) -> int:
        """Calls running now."""
        with self._lock:
            return len(self._busy)

    def statistics(self) -> dict[str, int]:
        """Live instances, calls running, and instances offered back to make room."""
        with self._lock:
            return {
                "instances": len(self._actors),
                "running": len(self._busy),
                "evicting": len(self._evicting),
            }
