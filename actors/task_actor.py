"""Execution slots: pykka actors that run deliveries and tell the outcome back.

A worker with concurrency N has N slot actors (N threads). Each slot holds its own instance of
every class-based task it has run, so state set in ``on_start`` lives across messages, and
answers through an injected ``reply`` callable (the runtime wires it to the node's inbox,
``runtime/inbox.py``; this layer knows no sockets). Slots are :class:`Supervised`: the pool's
supervisor restarts one that dies. A slot's inbox is a :class:`~.slot_inbox.SlotInbox`: a busy
slot may hold the next delivery there (run-ahead, see :mod:`.pool`); the slot runs a delivery
only if it can take its claim first (one recalled meanwhile has none, and is skipped without an
outcome).
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from celeriac._protocol import Delivery

from .execution import TaskExecutor
from .outcome import TaskOutcome
from .slot_inbox import SlotInbox
from .supervised import Supervised, SupervisorLink

__all__ = ["Delivery", "Reply", "TaskSlot"]

#: reply(slot_index, outcome): hand an outcome back to the connection.
Reply = Callable[[int, TaskOutcome], None]


class TaskSlot(Supervised):
    """One execution slot: runs deliveries one at a time, in its own thread."""

    # A cold shutdown must not wait for a task that never returns: the hub redelivers it.
    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox() -> Any:  # pykka's ActorInbox protocol (private: pykka._actor)
        # pykka's default inbox is a queue.Queue (Python: a Condition per put and get); this
        # one costs a deque append per put, and its wake-up may leave after the put, without
        # the GIL (see .slot_inbox: the hand-off was the longest hop of a round trip, issue 18).
        return SlotInbox()

    def __init__(
        self,
        index: int,
        executor: TaskExecutor,
        reply: Reply,
        on_stop_hook: Callable[[], None] | None = None,
        *,
        claims: dict[str, Delivery],
        worked: list[float] | None = None,
        link: SupervisorLink | None = None,
    ) -> None:
        super().__init__(link=link)
        self.index = index
        self.executor = executor
        self.reply = reply
        self._on_stop_hook = on_stop_hook
        #: The pool's claims for this slot (tag -> delivery), shared with ``ThreadPool.recall``.
        self.claims = claims
        #: [seconds spent running tasks, tasks run], this slot's totals (the pool's, read by the
        #: connection to size the prefetch window; only this slot's thread writes them).
        self.worked = [0.0, 0.0] if worked is None else worked

    def on_receive(self, message: Any) -> Any:
        """Run each :class:`Delivery` of a tuple (the pool hands them so) whose claim it
        takes, in order, and reply with each outcome as it ends (timed: :attr:`worked`)."""
        if type(message) is tuple:
            claims, execute, reply = self.claims, self.executor.execute, self.reply
            worked = self.worked
            deliveries: tuple[Delivery, ...] = message
            for delivery in deliveries:
                tag = delivery.delivery_tag
                # Only this very delivery's claim (a stale copy of a tag handed again after a
                # recall must not take the new one's); the pop decides a race with recall():
                # one side wins.
                if claims.get(tag) is not delivery or claims.pop(tag, None) is not delivery:
                    continue  # recalled: the connection gave it back to the hub
                began = perf_counter()
                outcome = execute(delivery)
                worked[0] += perf_counter() - began
                worked[1] += 1
                reply(self.index, outcome)
        return None

    def on_stop(self) -> None:
        """Run the pool's hook for a slot thread that ends (``on_thread_exit``), if any."""
        if self._on_stop_hook is not None:
            self._on_stop_hook()
