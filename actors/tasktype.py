"""Task types as actors: each limited task type owns its mailbox, cap and rate limit.

How it works
------------
A worker node runs deliveries in **one shared pool** of execution slots (``-c N`` slots,
whatever the pool). A task type with a ``rate_limit`` or a ``max_concurrency`` (see
:mod:`celeriac._limits` for where they come from) gets a :class:`TaskTypeActor`, a pykka actor
started with the node. The connection thread (the one that owns the socket to the hub)
*offers* each delivery of such a type to its actor instead of a slot; the actor keeps it in its
own queue (the type's mailbox of deliveries) and *releases* it back to the connection when the
type may run one more: fewer than ``max_concurrency`` of that type running here, and a token in
its bucket (:class:`~celeriac._limits.TokenBucket`, Celery's burst of one). The connection then
runs a released delivery in the next free slot, and tells the actor when it has finished, so
the actor can release the next one. When only the rate holds the head back, the actor sets a
timer (one :class:`~.timers.Timers` thread serves every type of the node) for the moment a token is
due and releases then.

So a delivery waiting for its type's rate or cap holds no slot and blocks no other type: other
types' deliveries go straight to free slots meanwhile. Waiting deliveries hold no credit at the
hub either (the connection hands the credit back as a delivery is offered, as Celery raises its
prefetch count for rate-limited tasks), so the hub keeps sending other work.

Types with neither limit have nothing to wait for: their deliveries go straight to a slot, with
no actor hop on the hot path.

With ``-P prefork`` each child has its own connection but the actors live in the parent, for
the whole node: a child's connection offers over its pipe (:class:`TypeGates` is what a
connection needs; see :mod:`celeriac.runtime.prefork_types`).

Nothing is lost: the connection keeps every offered delivery in its ledger until it is run or
handed back. At a warm shutdown it gives every delivery that has not started back to the hub
(the actors just drop their queues); if the node dies, the hub redelivers them.

Actors talk by ``tell`` only: the connection tells an actor :class:`Offer` and
:class:`Finished`; the actor answers through the injected ``release`` callable (the runtime
wires it to the connection's inproc socket) and tells itself a tick when its timer fires.

The pure part, :class:`~.typegate.TypeGate`, is what the actor decides with (testable on a
fake clock).

Class-based tasks (``class Thumbnail(app.Task)``) keep one instance per execution slot, created
and ``on_start``-ed in that slot's thread before its first message of that type, so state
lives across messages and is never shared between two threads; see
:class:`~celeriac.actors.execution.TaskExecutor`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._limits import TypeLimits, type_limits
from celeriac._log import get_logger

from .task_actor import Delivery
from .timers import Timers
from .typegate import TypeGate

__all__ = [
    "Finished",
    "Offer",
    "TaskTypeActor",
    "TaskTypes",
    "TypeGates",
    "Withdraw",
]

_log = get_logger("celeriac.worker")

#: schedule(delay, callback) -> cancel: run ``callback`` in ``delay`` seconds.
Schedule = Callable[[float, Callable[[], None]], Callable[[], None]]


@dataclass(frozen=True, slots=True)
class Offer:
    """A delivery of this type for the actor's queue."""

    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Finished:
    """A delivery this actor released has finished (or was handed back)."""


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Drop the waiting deliveries with these tags (handed back, or their consumer died)."""

    tags: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Tick:
    """The actor's timer fired: a token may be there."""


@dataclass(frozen=True, slots=True)
class _Drain:
    """Shutdown: drop the queue (the connection gives those deliveries back itself)."""


class TaskTypeActor(pykka.ThreadingActor):
    """The actor of one limited task type; see the module docstring."""

    use_daemon_thread = True

    def __init__(
        self,
        name: str,
        limits: TypeLimits,
        release: Callable[[Delivery], None],
        *,
        clock: Clock = SYSTEM_CLOCK,
        schedule: Schedule,
        on_stop_hook: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.clock = clock
        self.gate: TypeGate[Delivery] = TypeGate(limits, clock.monotonic())
        self._release = release
        self._schedule = schedule
        self._cancel: Callable[[], None] | None = None
        self._on_stop_hook = on_stop_hook
        self._offered = 0
        self._released = 0

    def statistics(self) -> dict[str, Any]:
        """This type's limits and counters: offered, released, waiting now, running now."""
        limits = self.gate.limits
        return {
            "rate_per_s": limits.rate,
            "max_concurrency": limits.max_concurrency,
            "offered": self._offered,
            "released": self._released,
            "waiting": len(self.gate.waiting),
            "running": self.gate.running,
        }

    def on_receive(self, message: Any) -> Any:
        """Offer, Finished, Withdraw, a tick or a drain; never raises (it would kill the
        actor and drop the messages queued behind it)."""
        try:
            self._handle(message)
        except Exception:
            _log.exception("task_type_actor_error", task=self.name, message=repr(message))
        return None

    def _handle(self, message: Any) -> None:
        now = self.clock.monotonic()
        if isinstance(message, Offer):
            self._offered += 1
            released = self.gate.offer(message.delivery, now)
        elif isinstance(message, Finished):
            released = self.gate.finished(now)
        elif isinstance(message, Withdraw):
            self.gate.withdraw(lambda d: d.delivery_tag in message.tags)
            released = []
        elif isinstance(message, _Drain):
            dropped = self.gate.drain()
            _log.debug("task_type_drained", task=self.name, count=len(dropped))
            released = []
        elif isinstance(message, _Tick):
            self._cancel = None
            released = self.gate.release(now)
        elif isinstance(message, Retune):  # remote control: new limits from now on
            waiting, running = self.gate.waiting, self.gate.running
            self.gate = TypeGate(message.limits, now)
            self.gate.waiting, self.gate.running = waiting, running
            released = self.gate.release(now)
        else:
            _log.error("task_type_unexpected_message", task=self.name, message=repr(message))
            return
        self._released += len(released)
        for delivery in released:
            self._release(delivery)
        self._arm(now)

    def _arm(self, now: float) -> None:
        """Set the timer for the next token if the head waits for one (and none is set)."""
        wait = self.gate.wait(now)
        if wait is not None and self._cancel is None:
            self._cancel = self._schedule(wait, self._tick)

    def _tick(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile
            self.actor_ref.tell(_Tick())

    def on_stop(self) -> None:
        """Cancel the timer; release per-thread resources."""
        if self._cancel is not None:
            self._cancel()
        if self._on_stop_hook is not None:
            self._on_stop_hook()


@dataclass(frozen=True, slots=True)
class Retune:
    """New limits for a type (remote control)."""

    limits: TypeLimits


class TypeGates(Protocol):
    """What a worker's connection needs of its task types' gates."""

    def offer(self, delivery: Delivery) -> bool:
        """Give a delivery to its type's gate; False if its type is not limited (run it)."""

    def finished(self, delivery: Delivery) -> None:
        """A delivery its gate released has finished (or was handed back)."""

    def drain(self, unstarted: Sequence[Delivery]) -> None:
        """Shutdown: the connection hands ``unstarted`` (all not started) back to the hub."""

    def stop(self) -> None:
        """Stop the gates."""


class TaskTypes:
    """The actors of a node's limited task types, by task name (the connection's view)."""

    def __init__(
        self, refs: Mapping[str, pykka.ActorRef[Any]], timers: Timers | None = None
    ) -> None:
        self._refs = dict(refs)
        self._timers = timers
        #: How to start another type's actor at run time (:meth:`retune`).
        self._make: Callable[[str, TypeLimits], pykka.ActorRef[Any]] | None = None

    @classmethod
    def start(
        cls,
        tasks: Mapping[str, Any],
        conf: Any,
        release: Callable[[Delivery], None],
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_thread_exit: Callable[[], None] | None = None,
    ) -> TaskTypes:
        """Start one actor per registered task type that has a rate limit or a cap."""
        refs: dict[str, pykka.ActorRef[Any]] = {}
        timers = Timers()
        for name, task in sorted(tasks.items()):
            limits = type_limits(task, conf)
            if limits.limited:
                refs[name] = TaskTypeActor.start(
                    name,
                    limits,
                    release,
                    clock=clock,
                    schedule=timers.schedule,
                    on_stop_hook=on_thread_exit,
                )
                _log.info(
                    "task_type_limited",
                    task=name,
                    rate_per_s=limits.rate,
                    max_concurrency=limits.max_concurrency,
                )
        types = cls(refs, timers)

        def make(name: str, limits: TypeLimits) -> pykka.ActorRef[Any]:
            return TaskTypeActor.start(
                name,
                limits,
                release,
                clock=clock,
                schedule=timers.schedule,
                on_stop_hook=on_thread_exit,
            )

        types._make = make
        return types

    def retune(self, name: str, limits: TypeLimits) -> None:
        """Remote control (``rate_limit``): task type ``name`` has these limits from now on;
        a type that had none gets its actor (the deliveries already running are not counted)."""
        ref = self._refs.get(name)
        if ref is not None:
            ref.tell(Retune(limits))
        elif self._make is not None and limits.limited:
            self._refs[name] = self._make(name, limits)
        _log.info("task_type_retuned", task=name, rate_per_s=limits.rate)

    def gated(self, name: str) -> bool:
        """True if deliveries of task ``name`` go through its type's actor."""
        return name in self._refs

    def offer(self, delivery: Delivery) -> bool:
        """Give a delivery to its type's actor; False if its type is not limited (run it)."""
        name = delivery.task.task
        ref = self._refs.get(name)
        if ref is None:
            return False
        try:
            ref.tell(Offer(delivery))
        except pykka.ActorDeadError:  # cannot happen (it never raises): run unlimited, loudly
            _log.error("task_type_actor_dead", task=name, note="its limits no longer apply")
            del self._refs[name]
            return False
        return True

    def finished(self, delivery: Delivery) -> None:
        """A released delivery has finished or was handed back."""
        ref = self._refs.get(delivery.task.task)
        if ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(Finished())

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Each limited type's counters (see :meth:`TaskTypeActor.statistics`), by name.

        Asks each actor: call it from outside the actors (``inspect``), never from one.
        """
        stats: dict[str, dict[str, Any]] = {}
        for name, ref in list(self._refs.items()):
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                stats[name] = ref.proxy().statistics().get(timeout=2)
        return stats

    def withdraw(self, tags: frozenset[str]) -> None:
        """Every actor drops the waiting deliveries with these tags."""
        for ref in self._refs.values():
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(Withdraw(tags))

    def drain(self, unstarted: Sequence[Delivery] = ()) -> None:
        """Shutdown: every actor drops its queue (the connection gives them back itself)."""
        for ref in self._refs.values():
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(_Drain())

    def stop(self) -> None:
        """Stop every actor."""
        if self._timers is not None:
            self._timers.stop()
        for ref in self._refs.values():
            ref.stop(block=True, timeout=5)
        self._refs.clear()
