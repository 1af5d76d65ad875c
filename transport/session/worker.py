"""The worker's side of the protocol as a state machine with no sockets (sans-IO).

How it works
------------
The loop around a :class:`WorkerSession` (the worker's connection thread,
``runtime/connection.py``, or a test) calls :meth:`~WorkerSession.connect` once (and for each
new connection), :meth:`~WorkerSession.handle` for each message from the hub,
:meth:`~WorkerSession.outcome` (or :meth:`~WorkerSession.outcome_frames`,
:meth:`~WorkerSession.lost`) when a slot finishes, :meth:`~WorkerSession.released` when a task
type's gate lets a delivery run, :meth:`~WorkerSession.shutdown` on a stop request and
:meth:`~WorkerSession.tick` every turn, always with the time ``now``; each returns the effects
(:mod:`.effects`) to perform, in order.

Credit
    ``HELLO`` announces the prefetch window minus what the worker still holds; each ``DONE``
    returns one credit (the slot's outcome carries it). The hub never sends more than that
    credit. The window (:mod:`.window`) starts at ``prefetch`` and follows how long the tasks
    take (``tick``'s ``worked``): wider, the difference goes out as ``CRED``; narrower, it is
    paid from withheld credit, then by the next outcomes returning none (the gated ledger's
    debt), and run-ahead follows the slots' share of it.
Slots and prefetch
    A delivery runs at once in a free slot (:class:`.Starting`, ``START`` if tracked,
    :class:`.Run`) or waits in the prefetch buffer. A buffer stalled behind busy slots for
    ``giveback`` seconds is given back (``REJ`` requeue) so another worker may run it; the
    credit it held is withheld and returned (``CRED``) when a slot frees, so the hub's view
    stays true.
Run-ahead
    With ``run_ahead`` n (a threads pool), a busy slot is also handed up to n deliveries that
    wait in the slot itself (:attr:`queued`: a :class:`.Run` alone), so it takes the next one
    as soon as it ends, without waiting for this loop; the buffer holds only what the slots
    have no room for. A queued delivery starts (:class:`.Starting`, ``START``) when the outcome
    before it in its slot arrives: :attr:`busy` is always what each slot runs. What has waited
    ``giveback`` seconds behind a long task, one for each slot that is free while others hold
    some (the last waiting in the slot that holds the most), and everything waiting at a
    shutdown, is recalled (:class:`.Recall`): the loop withdraws each from its slot unless the
    slot has begun it (then it runs, and its ``START`` comes with the outcome before it), and
    reports those withdrawn (:meth:`recalled`): each runs in a free slot, or (released by its
    gate) waits for one here, or goes back to the hub (``REJ``) with its credit withheld as for
    the buffer. A slot recalled from behind a long task or at a shutdown (:attr:`stuck`) is
    handed no more until its task ends. A slot that dies (:meth:`lost`) gives back what it ran
    and hands what waited behind it to the slot that replaces it.
Task types with a rate limit or a cap
    The injected ``gate`` offers such a delivery to its type's actor, which releases it later
    (:meth:`~WorkerSession.released`); meanwhile it waits in the :mod:`.gated` ledger, its
    credit handed back (``CRED``, once the hub's messages are all read: :meth:`received_all`)
    and repaid from later outcomes. A released delivery goes before the prefetch buffer.
Outcomes
    A slot's outcome arrives encoded (its slot's thread encoded it); outcomes drained together
    leave merged, one ``DONE`` for many (:meth:`take_outcomes`, :func:`celeriac._wire.next_batch`),
    and always before any later message, so the hub sees the worker's order.
Liveness
    A ``PING`` every heartbeat with the number of tasks running. :class:`.HubWatch` says
    ``waiting_for_hub``, ``hub_lost`` and ``hub_back`` once per change. A ``PONG`` from another
    hub incarnation, or one that does not know us, or an ``ERR hello``, is answered by a new
    ``HELLO`` listing the deliveries held (so the hub does not send them elsewhere); the PINGs
    queued while the hub was away come back in a burst, and one ``HELLO`` answers the burst.
Shutdown
    Warm: stop consuming (``CONSUME []``), give back the buffer and the gated deliveries, recall
    what waits in the slots (run-ahead), let running tasks (and keyed calls) finish until the
    shutdown timeout, then ``BYE`` and :class:`.Stop`. Cold (or timed out): ``BYE`` at once;
    the hub requeues what was running.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from celeriac import _protocol as p
from celeriac import _wire
from celeriac._wire_control2 import reply_messages

from .effects import (
    Command,
    Confirmed,
    Effect,
    Heartbeat,
    Keyed,
    Log,
    Ready,
    Received,
    Send,
    SendEncoded,
    Stop,
    Withdraw,
)
from .gated import GatedDeliveries
from .hubwatch import HubWatch
from .window import PrefetchWindow
from .worker_config import WorkerConfig, ungated
from .worker_slots import WorkerSlots

__all__ = ["HubWatch", "WorkerConfig", "WorkerSession"]

#: Messages from the hub for the node itself (remote control, revokes, keyed actors).
_COMMANDS = (p.ControlCommand, p.RevokeHeld, p.KeyedActivate, p.KeyedStop)


class WorkerSession(WorkerSlots):
    """A worker's slots, prefetched and gated deliveries, credit and hub liveness (sans-IO).

    ``gate`` offers a delivery to its task type's gate and says whether that type decides when
    it runs (it has a rate limit or a cap); the type releases it later through
    :meth:`released`. The default gates nothing.
    """

    def __init__(
        self, config: WorkerConfig, now: float, gate: Callable[[p.Delivery], bool] = ungated
    ) -> None:
        super().__init__(config)
        self.window = PrefetchWindow(config.slots, config.prefetch, config.prefetch_window, now)
        self.gate = gate
        self.queues = config.queues
        self.declare = config.declare
        self.buffer: deque[p.Delivery] = deque()
        #: Deliveries waiting for their type's gate, or released and waiting for a slot.
        self.gated = GatedDeliveries()
        #: Outcomes from the slots (encoded), not sent yet: they leave merged.
        self.outcomes: deque[list[bytes]] = deque()
        #: When the buffer last started waiting behind busy slots (None: not waiting).
        self.stalled_since: float | None = None
        #: Credit held back after giving buffered deliveries back; returned when a slot frees.
        self.withheld = 0
        #: Credit of deliveries offered to their gate, returned once the hub's messages are read.
        self.credit_due = 0
        self.accepting = True
        #: Whether each delivery is reported (:class:`.Received`): the loop turns it off while
        #: nobody listens (task events off), sparing an effect per task.
        self.report_received = True
        self.hub_id: str | None = None
        #: When the last HELLO went out without a WELCOME yet (None: none pending).
        self.hello_sent: float | None = None
        self.watch = HubWatch(config.endpoint, now, config.heartbeat)
        self.next_ping = now + config.heartbeat
        self.drain_deadline: float | None = None
        self.cold = False
        #: Confirmations asked of the hub (:meth:`settle`): request id -> task id.
        self.settling: dict[str, str] = {}
        self._settles = 0

    def inflight(self) -> tuple[str, ...]:
        """The delivery tags this worker holds (running, queued in slots, prefetched or gated)."""
        return (
            *(d.delivery_tag for d in self.handed()),
            *(d.delivery_tag for d in self.buffer),
            *self.gated.tags(),
        )

    def send(self, message: p.Message) -> list[Effect]:
        """Send ``message`` after the outcomes collected before it (the hub sees our order)."""
        if self.outcomes:
            return [*self.take_outcomes(), Send(message)]
        return [Send(message)]

    # -- local events ---------------------------------------------------------------------------

    def connect(self, now: float) -> list[Effect]:
        """(Re)introduce this worker: ``HELLO`` with its free credit and what it holds."""
        c = self.config
        self.withheld = 0  # the credit announced here is the whole truth for the hub
        self.credit_due = 0
        self.gated.hello()
        self.hello_sent = now
        held = len(self.handed()) + len(self.buffer) + self.gated.holding_credit()
        credit = max(0, self.window.size - held) if self.accepting else 0
        hello = p.Hello(
            role="worker",
            node=c.node,
            pid=c.pid,
            on_lost=c.on_lost,
            queues=self.queues if self.accepting else (),
            declare=self.declare,
            credit=credit,
            inflight=self.inflight(),
        )
        return self.send(hello)

    def outcome(self, slot: int, message: p.Done | p.Reject, now: float) -> list[Effect]:
        """Slot ``slot`` finished: send its outcome (it returns the slot's credit)."""
        if slot not in self.busy:
            return []
        effects = self.send(self._pay_debt(message))
        self._slot_done(slot, now, effects)
        return effects

    def outcome_frames(self, slot: int, frames: list[bytes], now: float) -> list[Effect]:
        """Slot ``slot`` finished with this encoded ``DONE`` or ``REJ``: it waits to leave with
        the other outcomes drained now (:meth:`take_outcomes`); the slot takes the next work.
        A slot that is not busy has no outcome to give: its task was settled already (cut short,
        see :meth:`settle`), and the hub must not hear of it twice."""
        if slot not in self.busy:
            return [Log("debug", "outcome_dropped", {"slot": slot})]
        if self.gated.debt:
            message = _wire.decode(frames)  # our own slot's message: well-formed
            if isinstance(message, p.Done | p.Reject):
                frames = _wire.encode(self._pay_debt(message))
        self.outcomes.append(frames)
        effects: list[Effect] = []
        self._slot_done(slot, now, effects)
        return effects

    def take_outcomes(self) -> list[Effect]:
        """The outcomes collected so far, merged (one ``DONE`` for many)."""
        outcomes = self.outcomes
        effects: list[Effect] = []
        while outcomes:
            effects.append(SendEncoded(_wire.next_batch(outcomes)))
        return effects

    def received_all(self) -> list[Effect]:
        """The hub's messages are all read: return the credit of the deliveries gated meanwhile."""
        due, self.credit_due = self.credit_due, 0
        return self.send(p.Credit(due)) if due and self.accepting else []

    def settle(self, task_id: str) -> list[Effect]:
        """Ask the hub to confirm it has processed what was sent so far (a ``STAT`` after the
        outcomes: the hub handles one peer's messages in order): :class:`.Confirmed` then. A
        prefork child waits for it before its parent kills it (see runtime/prefork.py)."""
        self._settles += 1
        rid = f"settle-{self._settles}"
        self.settling[rid] = task_id
        return self.send(p.Stat(task_id, rid))

    def released(self, tag: str, now: float) -> list[Effect]:
        """A task type's gate lets the delivery ``tag`` run: in a free slot, or next."""
        delivery = self.gated.release(tag)
        if delivery is None:
            return []  # handed back meanwhile (shutdown)
        effects: list[Effect] = []
        if self.free and self.accepting:
            self._run(self.free.pop(), delivery, effects)
            return effects
        room = self._room() if self.accepting else None
        if room is not None:
            self.released_waiting.add(tag)  # recalled, it stays here: see recalled()
            self._hand(room, delivery, now, effects)
            return effects
        self.gated.ready.append(delivery)
        return effects

    def shutdown(self, now: float, timeout: float, *, cold: bool = False) -> list[Effect]:
        """Begin a warm shutdown (drain), or a cold one; a second call may make it cold."""
        self.cold = self.cold or cold
        if self.drain_deadline is not None:
            return []
        self.drain_deadline = now + timeout
        self.accepting = False
        gated = tuple(self.gated.take_unstarted())
        unstarted = (*self.buffer, *gated)
        self.buffer.clear()
        self.stalled_since = None
        return [
            *self.send(p.Consume(())),
            Withdraw(gated),
            *self._give_back(unstarted),
            *self._recall_waiting(),
            Log("info", "draining", {"running": len(self.busy)}),
        ]

    def set_queues(self, queues: tuple[str, ...], declare: p.Declare | None) -> list[Effect]:
        """Consume these queues from now on (remote control: add or cancel a consumer)."""
        self.queues, self.declare = queues, declare
        return self.send(p.Consume(queues if self.accepting else ()))

    # -- time -----------------------------------------------------------------------------------

    def tick(
        self, now: float, others: int = 0, worked: tuple[float, int] | None = None
    ) -> list[Effect]:
        """Hub liveness lines, the prefetch give-back, heartbeats, the prefetch window, and the
        end of a drain (which also waits for ``others``: work running outside the slots, keyed
        calls). ``worked``: the seconds the slots have spent running tasks and how many they
        ran, since they started (None: the pool does not measure, and the window keeps its
        floor; or the loop skips the read while ``window.due`` is False)."""
        ended = self._drain_end(now, others)
        if ended:
            return ended
        effects = self.watch.tick(now, running=len(self.busy))
        change = self.window.resize(now, worked) if self.accepting and worked else 0
        if change:
            effects += self._resized(change)
        if self.stalled_since is not None and now - self.stalled_since > self.config.giveback:
            effects += self._give_back_buffer()
        if self.waiting_since and now - min(self.waiting_since.values()) > self.config.giveback:
            effects += self._recall_stalled(now)
        if now >= self.next_ping:
            self.next_ping = now + self.config.heartbeat
            effects += [Heartbeat(), *self.send(p.Ping(inflight=len(self.busy)))]
        return effects

    def _drain_end(self, now: float, others: int) -> list[Effect]:
        if self.drain_deadline is None:
            return []
        effects: list[Effect] = []
        if self.busy and not self.cold and now > self.drain_deadline:
            hint = "running tasks are handed back to the hub for redelivery"
            effects.append(
                Log("warning", "shutdown_timeout", {"running": len(self.busy), "hint": hint})
            )
            self.cold = True
        if (self.busy or others) and not self.cold:
            return effects
        return [*effects, *self.send(p.Bye()), Stop(cold=bool(self.busy))]

    # -- messages from the hub ------------------------------------------------------------------

    def handle(self, message: p.Message, now: float) -> list[Effect]:
        """Process one message from the hub."""
        effects = self.watch.heard(now)
        if isinstance(message, p.Deliver):
            on_delivery = self._on_delivery
            for delivery in message.deliveries:
                on_delivery(delivery, now, effects)
        elif isinstance(message, _COMMANDS):
            effects.append(Command(message))
        elif isinstance(message, p.Reply):
            settled = self.settling.pop(str(message.rid), None)
            if settled is not None:
                effects.append(Confirmed(settled))
        elif isinstance(message, p.Welcome):
            effects += self._on_welcome(message)
        elif self._stale(message):
            # PINGs queued while the hub was away all come back at once: one HELLO answers them.
            sent = self.hello_sent
            if sent is None or now - sent > self.config.heartbeat:
                effects += self.connect(now)
        elif isinstance(message, p.Ping):
            effects += self.send(p.Pong())
        elif isinstance(message, p.Error):
            effects.append(Log("error", "hub_refused_us", {"reason": message.reason}))
        return effects

    def control_reply(self, rid: str, hostname: str, reply: object) -> list[Effect]:
        """The answer to the control command ``rid``, in pieces if long."""
        effects: list[Effect] = []
        for message in reply_messages(rid, hostname, reply):
            effects += self.send(message)
        return effects

    def _stale(self, message: p.Message) -> bool:
        """A PONG from another hub or one that does not know us, or ``ERR hello``."""
        if isinstance(message, p.Pong):
            return message.known is False or message.hub != self.hub_id
        return isinstance(message, p.Error) and message.code == "hello"

    def _on_welcome(self, message: p.Welcome) -> list[Effect]:
        c = self.config
        first, previous = self.hub_id is None, self.hub_id
        self.hub_id = message.hub
        self.hello_sent = None
        effects: list[Effect] = []
        if message.node is not None and message.node != c.node:
            hint = "another live worker has this name: give each worker its own -n NAME"
            fields = {"node": c.node, "known_as": message.node, "hint": hint}
            effects.append(Log("warning", "node_name_taken", fields))
        if c.control is not None:
            effects += self.send(p.ControlJoin(message.node or c.control))
        if first:
            connected = {"endpoint": c.endpoint, "hub": message.hub}
            return [*effects, Log("info", "hub_connected", connected), Ready(message.hub, True)]
        if message.hub != previous:
            changed = {"hub": message.hub, "previous": previous}
            effects.append(Log("info", "hub_reconnected", changed))
        return effects

    def _on_delivery(self, delivery: p.Delivery, now: float, out: list[Effect]) -> None:
        """A delivery from the hub: to a keyed actor, its type's gate, a free slot, a busy
        slot's run-ahead, or the buffer (its effects appended to ``out``)."""
        if p.is_keyed_queue(delivery.queue):
            out.append(Keyed(delivery))
            return
        if not self.accepting:
            out += self._give_back((delivery,))
            return
        if self.report_received:
            out.append(Received(delivery))
        if self.gate(delivery):  # its type has a rate limit or a cap: it decides when
            self.credit_due += self.gated.offer(delivery.delivery_tag, delivery)
        elif self.free:
            self._run(self.free.pop(), delivery, out)
        else:
            room = self._room()
            if room is not None:
                self._hand(room, delivery, now, out)
                return
            self.buffer.append(delivery)
            if self.stalled_since is None:
                self.stalled_since = now

    def _give_back_buffer(self) -> list[Effect]:
        """Prefetched deliveries waited too long behind busy slots: let another worker have them.

        This keeps prefetch (no hub round trip between two short tasks) without Celery's
        complaint that a long task holds back the tasks prefetched behind it.
        """
        given = tuple(self.buffer)
        self.buffer.clear()
        self.withheld += len(given)
        self.stalled_since = None
        return [*self._give_back(given), Log("debug", "prefetch_given_back", {"count": len(given)})]
