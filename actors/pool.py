"""The threads pool: N execution slots under a one_for_one supervisor.

The connection hands each delivery to a free slot by index (:meth:`ThreadPool.submit`) and gets
the outcome back through the ``reply`` callable. If a slot actor dies (it should not: task code
runs under a guard), its supervisor starts a new one in its place and ``lost(index)`` tells the
connection, which gives the delivery that slot held back to the hub for redelivery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka

from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._execution import TaskExecutor

from .supervisor import ChildSpec, Supervisor, SupervisorLink
from .task_actor import Delivery, Reply, TaskSlot

__all__ = ["ThreadPool"]


class ThreadPool:
    """``size`` slot actors (threads) supervised one_for_one; see the module docstring."""

    def __init__(
        self,
        size: int,
        make_executor: Callable[[], TaskExecutor],
        reply: Reply,
        *,
        lost: Callable[[int], None],
        on_thread_exit: Callable[[], None] | None = None,
        on_escalate: Callable[[str], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.size = size
        self._make_executor = make_executor
        self._reply = reply
        self._lost = lost
        self._on_thread_exit = on_thread_exit
        self._on_escalate = on_escalate
        self._clock = clock
        self._refs: list[pykka.ActorRef[Any] | None] = [None] * size
        self._lock = threading.Lock()
        self._supervisor: pykka.ActorRef[Any] | None = None

    def _spec(self, index: int) -> ChildSpec:
        def start(link: SupervisorLink) -> pykka.ActorRef[Any]:
            with self._lock:
                restarted = self._refs[index] is not None
            ref = TaskSlot.start(
                index, self._make_executor(), self._reply, self._on_thread_exit, link=link
            )
            with self._lock:
                self._refs[index] = ref
            if restarted:
                self._lost(index)
            return ref

        return ChildSpec(f"slot-{index}", start)

    def start(self) -> None:
        """Start the supervisor and its slots."""
        self._supervisor = Supervisor.start(
            [self._spec(i) for i in range(self.size)],
            strategy="one_for_one",
            name="pool",
            clock=self._clock,
            on_escalate=self._on_escalate,
        )

    def submit(self, index: int, delivery: Delivery) -> None:
        """Hand a delivery to slot ``index`` (which the caller knows is free)."""
        with self._lock:
            ref = self._refs[index]
        if ref is None:
            self._lost(index)
            return
        try:
            ref.tell(delivery)
        except pykka.ActorDeadError:
            self._lost(index)  # its supervisor is replacing it

    def stop(self, *, wait: bool = True) -> None:
        """Stop the slots (in reverse order); with ``wait``, let running tasks finish."""
        if self._supervisor is not None:
            self._supervisor.stop(block=wait)
            self._supervisor = None

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
