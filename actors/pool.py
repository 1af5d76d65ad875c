"""The threads pool: N execution slots under a one_for_one supervisor.

The connection hands deliveries to a slot by index (:meth:`ThreadPool.submit`, or what a turn
gave one slot at once: :meth:`ThreadPool.hand`) and gets each outcome back through the ``reply``
callable. A busy slot may be handed :attr:`run_ahead` more (they wait in its inbox, a
:class:`~.slot_inbox.SlotInbox`), so it goes from one task to the next without waiting for the
connection; a sleeping slot's wake-up may be left for :meth:`ThreadPool.wake_handed`. Each
delivery handed to a slot carries a claim (a per-slot dict, tag -> delivery): the slot takes the
claim before it runs the delivery and skips one whose claim is gone, so
:meth:`ThreadPool.recall` can withdraw a delivery still waiting in a slot (the connection then
gives it back to the hub: a long task does not hold back what waits behind it); both take it
with one ``dict.pop``, atomic under the GIL, so exactly one side wins. If a slot actor dies (it
should not: task code runs under a guard), its supervisor starts a new one in its place and
``lost(index)`` tells the connection, which gives the delivery that slot ran back to the hub for
redelivery and hands the ones waiting behind it (dropped with the dead actor's inbox) to the new
one. Until the connection has done so (:meth:`ThreadPool.replaced`), deliveries still go to the
dead actor and are dropped: the new one must not run one the connection is about to hand it
again (the dead actor's claims are dropped then).

Time limits: one :class:`~celeriac.actors.watchdog.Watchdog` thread (on the pool's clock) watches
every slot thread; it raises ``SoftTimeLimitExceeded``/``TimeLimitExceeded`` inside the slot's
thread when a limit passes. That interrupts Python code, not a blocking C call or system call
(the exception lands when the call returns); see :mod:`celeriac.actors.watchdog`.

Every pool (threads, solo, asyncio, prefork) offers the same :class:`Pool` interface, so the
connection thread hands out deliveries the same way whatever runs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import pykka
from pykka._envelope import Envelope  # what ActorRef.tell puts (see submit)

from celeriac._clock import SYSTEM_CLOCK, Clock

from .execution import TaskExecutor
from .slot_inbox import SlotInbox
from .supervised import ChildSpec, SupervisorLink
from .supervisor import Supervisor
from .task_actor import Delivery, Reply, TaskSlot
from .watchdog import Watchdog

__all__ = ["Pool", "PoolFactory", "PoolWiring", "ThreadPool"]


class Pool(Protocol):
    """What the worker's connection needs of a pool: N slots addressed by index."""

    size: int
    #: How many deliveries a busy slot may be handed to wait behind its running one.
    run_ahead: int

    def start(self) -> None:
        """Start the slots."""

    def submit(self, index: int, delivery: Delivery) -> None:
        """Run a delivery in slot ``index`` (free, or busy with room to wait: run-ahead); its
        outcome comes back through ``reply``."""

    def hand(self, index: int, deliveries: Sequence[Delivery], *, wake: bool = True) -> None:
        """Run several deliveries in slot ``index``, in this order (what one turn gave it).
        ``wake=False``: a sleeping slot is woken by the next :meth:`wake_handed` instead."""

    def wake_handed(self) -> None:
        """Wake the slots that :meth:`hand` left asleep (``wake=False``)."""

    def recall(self, index: int, tag: str) -> bool:
        """Withdraw the delivery ``tag`` handed to slot ``index`` to wait there: True means the
        slot will never run it, False that it has begun it (or has none such)."""

    def replaced(self, index: int) -> bool:
        """The connection has read ``lost(index)``: the slot's new actor takes deliveries from
        now on. False if no new actor waited (an earlier ``lost`` of this slot covered it)."""

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until every slot can take a delivery; False after ``timeout``."""

    def worked(self) -> tuple[float, int] | None:
        """Seconds the slots have spent running tasks and how many they ran, since start (the
        worker sizes its prefetch window by it); None if this pool does not time its tasks."""

    def stop(self, *, wait: bool = True) -> None:
        """Stop; with ``wait``, let running tasks finish."""

    def statistics(self) -> dict[str, Any]:
        """Counters for ``inspect``."""


@dataclass(frozen=True)
class PoolWiring:
    """What every pool is plugged into, whatever runs the tasks.

    ``make_executor`` makes one slot's :class:`TaskExecutor`; ``reply(index, outcome)`` hands
    a :class:`~celeriac.actors.outcome.TaskOutcome` to the connection; ``lost(index)`` says a
    slot was replaced (its delivery goes back to the hub); ``on_thread_exit`` runs in each pool
    thread as it ends; ``on_escalate`` is called when the pool's supervisor gives up; ``clock``
    drives time limits and restarts.
    """

    make_executor: Callable[[], TaskExecutor]
    reply: Reply
    lost: Callable[[int], None]
    on_thread_exit: Callable[[], None] | None = None
    on_escalate: Callable[[str], None] | None = None
    clock: Clock = SYSTEM_CLOCK


class PoolFactory(Protocol):
    """How the worker makes a pool (``ThreadPool`` and ``AsyncPool`` are such factories)."""

    def __call__(self, size: int, wiring: PoolWiring) -> Pool: ...


class ThreadPool:
    """``size`` slot actors (threads) supervised one_for_one; see the module docstring."""

    #: Deliveries that may wait in a busy slot (they start with no round trip through the
    #: connection: 12-15% of a worker's CPU per task, benchmarks/cpu_split.py, issue 18); one
    #: waiting behind a long task is recalled (:meth:`recall`) and given back to the hub. The
    #: session holds fewer: a slot's share of the prefetch window (transport/session/worker_slots).
    #: 64, not 16: a slot runs dry less often while the connection waits for the GIL (16
    #: ~0.4 ms of noops), so fewer sleeps and wake-ups, and TASK/DONE twice as large
    #: (worker_loop.py, 6 alternated: switches a task noop 0.32-0.51 -> 0.19-0.41, add
    #: 0.29-0.38 -> 0.13-0.16; CPU µs a task, lowest/median, noop 51/64 -> 49/59, add
    #: 54/61 -> 47/54). Slow tasks keep a small window, and with it a shallow run-ahead.
    run_ahead = 64

    def __init__(self, size: int, wiring: PoolWiring) -> None:
        self.size = size
        self._wiring = wiring
        #: Where deliveries go: each slot's actor as the connection knows it.
        self._refs: list[pykka.ActorRef[Any] | None] = [None] * size
        #: A slot's restarted actor, until the connection has read its ``lost`` (replaced()).
        self._fresh: dict[int, pykka.ActorRef[Any]] = {}
        #: Each slot's claims: the deliveries handed to it, by tag, that it has not begun.
        self._claims: list[dict[str, Delivery]] = [{} for _ in range(size)]
        #: Each slot's [seconds spent running tasks, tasks run] (see :meth:`worked`).
        self._worked: list[list[float]] = [[0.0, 0.0] for _ in range(size)]
        self._lock = threading.Lock()
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._watchdog = Watchdog(wiring.clock)
        self._ready = threading.Event()
        #: Inboxes of slots handed deliveries while asleep, not woken yet (see :meth:`hand`).
        self._unwoken: list[SlotInbox] = []

    def _spec(self, index: int) -> ChildSpec:
        def start(link: SupervisorLink) -> pykka.ActorRef[Any]:
            with self._lock:
                restarted = self._refs[index] is not None
            executor = self._wiring.make_executor()
            executor.watchdog = self._watchdog
            ref = TaskSlot.start(
                index,
                executor,
                self._wiring.reply,
                self._wiring.on_thread_exit,
                claims=self._claims[index],
                worked=self._worked[index],
                link=link,
            )
            with self._lock:
                if restarted:
                    self._fresh[index] = ref
                else:
                    self._refs[index] = ref
                if all(r is not None for r in self._refs):
                    self._ready.set()
            if restarted:
                self._wiring.lost(index)
            return ref

        return ChildSpec(f"slot-{index}", start)

    def start(self) -> None:
        """Start the supervisor and its slots."""
        self._supervisor = Supervisor.start(
            [self._spec(i) for i in range(self.size)],
            strategy="one_for_one",
            name="pool",
            clock=self._wiring.clock,
            on_escalate=self._wiring.on_escalate,
        )

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until every slot actor has been started once; False after ``timeout``."""
        return self._ready.wait(timeout)

    def worked(self) -> tuple[float, int]:
        """Seconds the slots have spent running tasks, and how many they ran, since start."""
        seconds = count = 0.0
        for slot_seconds, slot_count in self._worked:
            seconds += slot_seconds
            count += slot_count
        return seconds, int(count)

    def submit(self, index: int, delivery: Delivery) -> None:
        """Hand a delivery to slot ``index`` (free, or busy with room: see the module docs)."""
        self.hand(index, (delivery,))

    def hand(self, index: int, deliveries: Sequence[Delivery], *, wake: bool = True) -> None:
        """Hand several deliveries to slot ``index`` in one put: it runs them in this order
        (the connection hands a turn's deliveries for a slot at once: one put and at most one
        wake-up of the slot, one pass of its actor loop). With ``wake=False`` a sleeping slot
        is woken by the next :meth:`wake_handed` (the connection's, once it has let go of its
        turn: the slot then starts without waiting for the GIL or the connection's lock)."""
        ref = self._refs[index]  # one read of a list item: atomic, no lock needed
        if ref is None:
            self._wiring.lost(index)
            return
        claims = self._claims[index]
        for delivery in deliveries:
            claims[delivery.delivery_tag] = delivery
        # Straight into the actor's inbox (what ``ref.tell`` does after its is-alive look). A
        # dead actor's inbox is read by no one, so it drops the deliveries, as a tell refused
        # with ActorDeadError did: its supervisor is replacing it, and the lost(index) it
        # reports makes the connection hand what that slot held to the new actor.
        inbox = cast(SlotInbox, ref.actor_inbox)  # TaskSlot._create_actor_inbox's
        if inbox.push(Envelope(tuple(deliveries))):
            if wake:
                inbox.wake()
            else:
                self._unwoken.append(inbox)

    def wake_handed(self) -> None:
        """Wake the slots :meth:`hand` left asleep (``wake=False``), in the caller's thread."""
        unwoken = self._unwoken
        while unwoken:
            unwoken.pop().wake()

    def recall(self, index: int, tag: str) -> bool:
        """Withdraw the delivery ``tag`` waiting in slot ``index`` unless the slot has begun it
        (see the module docs); True: it will never run there."""
        return self._claims[index].pop(tag, None) is not None

    def replaced(self, index: int) -> bool:
        """Deliveries for slot ``index`` go to its restarted actor from now on."""
        with self._lock:
            ref = self._fresh.pop(index, None)
            if ref is not None:
                self._refs[index] = ref
                # What the dead actor held is gone with its inbox; the connection hands it again.
                self._claims[index].clear()
            return ref is not None or self._refs[index] is None  # None: submit() reported it

    def stop(self, *, wait: bool = True) -> None:
        """Stop the slots (in reverse order); with ``wait``, let running tasks finish."""
        if self._supervisor is not None:
            self._supervisor.stop(block=wait)
            self._supervisor = None
        self._watchdog.stop()

    def statistics(self) -> dict[str, Any]:
        """The supervisor's counters (restarts per slot, last failure...)."""
        sup = self._supervisor
        if sup is None:
            return {}
        try:
            stats: dict[str, Any] = sup.proxy().statistics().get(timeout=2)
        except (pykka.ActorDeadError, pykka.Timeout):
            return {}
        return stats
