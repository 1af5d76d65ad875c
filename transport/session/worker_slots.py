"""The slots of a worker session: what each runs, what waits in it, which are free (sans-IO).

:class:`WorkerSlots` is the base of :class:`~.worker.WorkerSession`: the effects of starting a
delivery in a slot, handing one to wait in a busy slot (run-ahead), recalling what waits there,
ending a slot's task and losing a slot, and the credit they hold as the prefetch window changes
or a gated delivery's debt is paid. The rules are in the session's "how it works" (Credit,
Slots and prefetch, Run-ahead).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable

from celeriac import _protocol as p

from .effects import Effect, Finished, Log, Recall, Run, Starting
from .gated import GatedDeliveries
from .window import PrefetchWindow
from .worker_config import WorkerConfig

__all__ = ["WorkerSlots", "ahead"]


def ahead(most: int, window: int, slots: int) -> int:
    """Run-ahead depth: the slot's share of ``window`` beyond its running one, at most ``most``."""
    return max(0, min(most, window // max(1, slots) - 1))


class WorkerSlots:
    """Slot bookkeeping for :class:`~.worker.WorkerSession` (which sets the other fields)."""

    accepting: bool
    buffer: deque[p.Delivery]
    gated: GatedDeliveries
    stalled_since: float | None
    withheld: int
    window: PrefetchWindow

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.free = list(range(config.slots))
        #: What each busy slot runs.
        self.busy: dict[int, p.Delivery] = {}
        #: Deliveries handed to a busy slot that wait there behind its running one (run-ahead).
        self.queued: dict[int, deque[p.Delivery]] = {i: deque() for i in range(config.slots)}
        #: How many deliveries a busy slot holds waiting: what the pool can take
        #: (``config.run_ahead``), within the slot's share of the prefetch window.
        self.run_ahead = ahead(config.run_ahead, config.prefetch, config.slots)
        #: When what waits in a slot began waiting behind the delivery it runs (the slots with
        #: something waiting, but for those recalled: see :attr:`stuck`).
        self.waiting_since: dict[int, float] = {}
        #: Busy slots whose waiting deliveries were recalled (behind a long task, or to run in
        #: a free slot): none is handed to them again before their task ends.
        self.stuck: set[int] = set()
        #: Tags of released gated deliveries handed to wait in a slot: their type's token is
        #: spent, so a recalled one stays here (:meth:`recalled`), as :attr:`gated` ``.ready`` do.
        self.released_waiting: set[str] = set()

    def send(self, message: p.Message) -> list[Effect]:
        raise NotImplementedError  # the session's: after the outcomes collected before it

    def handed(self) -> list[p.Delivery]:
        """The deliveries the slots hold: running, then waiting in them (run-ahead)."""
        return [*self.busy.values(), *(d for q in self.queued.values() for d in q)]

    def lost(self, slot: int, now: float) -> list[Effect]:
        """Slot ``slot`` died with its task: hand the task back for another try, and what
        waited behind it (never started) to the slot that replaces it."""
        delivery = self.busy.get(slot)
        if delivery is None:
            return []
        log = Log("error", "slot_lost_task", {"slot": slot, "task_id": delivery.task.id})
        credit = self.gated.credit_back()
        effects = [log, *self._give_back((delivery,), credit)]
        waiting = self.queued[slot]
        if not waiting:
            self._slot_done(slot, now, effects)
            return effects
        effects.append(Finished(slot, self.busy.pop(slot)))
        self.waiting_since.pop(slot, None)
        self.stuck.discard(slot)
        again, self.queued[slot] = tuple(waiting), deque()
        if not self.accepting:  # draining: back to the hub, as the buffer was
            self.free.append(slot)
            self.released_waiting.difference_update(d.delivery_tag for d in again)
            return effects + self._give_back(again)
        self._run(slot, again[0], effects)
        for later in again[1:]:
            self._hand(slot, later, now, effects)
        self._fill(slot, now, effects)
        return effects

    def recalled(self, taken: Iterable[tuple[int, p.Delivery]]) -> list[Effect]:
        """These deliveries of a :class:`.Recall` were taken back before their slot began them:
        each runs in a free slot if there is one; else a released gated one waits for a slot
        with the others released; else it goes back to the hub (``REJ``, requeue), and while
        accepting the credit it held is withheld until a slot frees, as for a stalled buffer."""
        effects: list[Effect] = []
        given: list[p.Delivery] = []
        for slot, delivery in taken:
            if not self._unqueue(slot, delivery):
                continue
            released = delivery.delivery_tag in self.released_waiting
            self.released_waiting.discard(delivery.delivery_tag)
            if not self.accepting:
                given.append(delivery)
            elif self.free:
                self._run(self.free.pop(), delivery, effects)
            elif released:
                self.gated.ready.appendleft(delivery)
            else:
                given.append(delivery)
        if not given:
            return effects
        if self.accepting:
            self.withheld += len(given)
        log = Log("debug", "prefetch_given_back", {"count": len(given), "waited_in_slots": True})
        return [*effects, *self._give_back(tuple(given)), log]

    def _unqueue(self, slot: int, delivery: p.Delivery) -> bool:
        """Take this very delivery out of what waits in ``slot`` (False: not there)."""
        waiting = self.queued[slot]
        for i, held in enumerate(waiting):
            if held is delivery:
                del waiting[i]
                if not waiting:
                    self.waiting_since.pop(slot, None)
                return True
        return False

    def _recall_stalled(self, now: float) -> list[Effect]:
        """Recall what has waited in a slot for ``giveback`` seconds behind a long task, so
        that another worker may run it (README "Fair dispatch")."""
        giveback = self.config.giveback
        late = [slot for slot, since in self.waiting_since.items() if now - since > giveback]
        return self._recall(late)

    def _recall_to_free(self) -> list[Effect]:
        """A slot is free while others hold deliveries waiting behind their task: recall one per
        free slot, to run there now (:meth:`recalled`), each time the last one waiting in the
        slot that holds the most (it would start last). Only those: with deep run-ahead the
        rest would go back to the hub, and the slot they wait in may well be quick."""
        held = {slot: len(self.queued[slot]) for slot in self.waiting_since}
        waiting: list[tuple[int, p.Delivery]] = []
        for _ in self.free:
            slot = max(held, key=held.__getitem__, default=None)
            if slot is None or not held[slot]:
                break
            held[slot] -= 1
            waiting.append((slot, self.queued[slot][held[slot]]))
        return [Recall(tuple(waiting))] if waiting else []

    def _recall_waiting(self) -> list[Effect]:
        """Recall everything waiting in the slots (a shutdown: it goes back to the hub)."""
        return self._recall([slot for slot, waiting in self.queued.items() if waiting])

    def _recall(self, slots: list[int]) -> list[Effect]:
        """A :class:`.Recall` of what waits in ``slots``; they take no more until they free."""
        waiting: list[tuple[int, p.Delivery]] = []
        for slot in slots:
            self.waiting_since.pop(slot, None)
            self.stuck.add(slot)
            waiting += [(slot, delivery) for delivery in self.queued[slot]]
        return [Recall(tuple(waiting))] if waiting else []

    # The helpers below append their effects to ``out``: the effects of every task pass through
    # them, and one list per message costs less than a list per helper (issue 18).

    def _run(self, slot: int, delivery: p.Delivery, out: list[Effect]) -> None:
        """Run ``delivery`` in the free ``slot``."""
        self._starting(slot, delivery, out)
        out.append(Run(slot, delivery))

    def _starting(self, slot: int, delivery: p.Delivery, out: list[Effect]) -> None:
        """``delivery`` is what ``slot`` runs now (its events and ``START``)."""
        self.busy[slot] = delivery
        if self.released_waiting:
            self.released_waiting.discard(delivery.delivery_tag)
        c = self.config
        out.append(Starting(slot, delivery))
        tracked = c.tracked(delivery.task.task)
        if c.track_started if tracked is None else tracked:  # the task's option wins
            out += self.send(p.Start((p.TaskRef(delivery.task.id, delivery.tag),)))
        if c.extended:  # result_extended: the hub keeps the request beside the result
            out += self.send(p.TaskState(delivery.task.id, delivery.tag, extended=True))

    def _hand(self, slot: int, delivery: p.Delivery, now: float, out: list[Effect]) -> None:
        """Hand ``delivery`` to the busy ``slot``: it waits there behind the running one."""
        self.queued[slot].append(delivery)
        if slot not in self.waiting_since:
            self.waiting_since[slot] = now
        out.append(Run(slot, delivery))

    def _fill(self, slot: int, now: float, out: list[Effect]) -> None:
        """Hand the busy ``slot`` what it has room to wait for (run-ahead)."""
        waiting, ready = self.queued[slot], self.gated.ready
        while len(waiting) < self.run_ahead and (ready or self.buffer):
            released = bool(ready)  # _next takes a released one first
            delivery = self._next(now)
            if delivery is None:
                break
            if released:
                self.released_waiting.add(delivery.delivery_tag)
            self._hand(slot, delivery, now, out)

    def _room(self) -> int | None:
        """A busy slot with room to wait in (the least held, not :attr:`stuck`), or None."""
        ahead, best = self.run_ahead, None
        if ahead:
            stuck = self.stuck
            for slot in self.busy:
                waiting = len(self.queued[slot])
                if waiting >= ahead or slot in stuck:
                    continue
                if best is None or waiting < len(self.queued[best]):
                    best = slot
        return best

    def _next(self, now: float) -> p.Delivery | None:
        """The next delivery for a slot: a released gated one, else the buffer's first."""
        if not self.accepting:
            return None
        if self.gated.ready:
            return self.gated.ready.popleft()
        if self.buffer:
            delivery = self.buffer.popleft()
            self.stalled_since = now if self.buffer else None
            return delivery
        return None

    def _slot_done(self, slot: int, now: float, out: list[Effect]) -> None:
        """The slot's running delivery ended: it runs what waited in it, or the next gated or
        buffered delivery; what room it has left is filled (run-ahead); or it is free, the
        withheld credit goes back and what waits behind another slot's task is recalled to
        run here."""
        out.append(Finished(slot, self.busy.pop(slot)))
        if self.stuck:
            self.stuck.discard(slot)
        waiting = self.queued[slot]
        if waiting:
            self._starting(slot, waiting.popleft(), out)
            if waiting:  # (run_ahead > 1) the rest now waits behind the one that starts
                self.waiting_since[slot] = now
            else:
                self.waiting_since.pop(slot, None)
        else:
            delivery = self._next(now)
            if delivery is not None:
                self._run(slot, delivery, out)
        if slot in self.busy:
            self._fill(slot, now, out)
            return
        self.free.append(slot)
        if self.withheld and self.accepting:
            credit, self.withheld = self.withheld, 0
            out += self.send(p.Credit(credit))
        if self.waiting_since and self.accepting:
            out += self._recall_to_free()

    def _give_back(self, deliveries: tuple[p.Delivery, ...], credit: int = 0) -> list[Effect]:
        """Hand deliveries back to the hub for another consumer (``REJ``, requeue)."""
        rejections = tuple(p.Rejection(d.task.id, d.tag, credit=credit) for d in deliveries)
        return self.send(p.Reject(rejections)) if rejections else []

    def _pay_debt(self, message: p.Done | p.Reject) -> p.Done | p.Reject:
        """An outcome returning one credit returns none while a debt is owed (:mod:`.gated`)."""
        if not self.gated.debt:
            return message
        if isinstance(message, p.Done) and message.results[0].credit:
            result = dataclasses.replace(message.results[0], credit=self.gated.credit_back())
            return p.Done((result, *message.results[1:]))
        if isinstance(message, p.Reject) and message.rejections[0].credit:
            rejection = dataclasses.replace(message.rejections[0], credit=self.gated.credit_back())
            return p.Reject((rejection, *message.rejections[1:]))
        return message

    def _resized(self, change: int) -> list[Effect]:
        """The prefetch window changed by ``change`` (:mod:`.window`): a wider one is credit
        the hub may use at once; a narrower one is paid from the credit held back after a
        give-back, then by the next outcomes returning none (the gated ledger's debt)."""
        window = self.window
        self.run_ahead = ahead(self.config.run_ahead, window.size, self.config.slots)
        average = round((window.average or 0.0) * 1e6)
        log = Log("debug", "prefetch_window", {"size": window.size, "task_us": average})
        if change > 0:
            return [*self.send(p.Credit(change)), log]
        paid = min(self.withheld, -change)
        self.withheld -= paid
        self.gated.debt += -change - paid
        return [log]
