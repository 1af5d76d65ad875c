"""The worker's side of the protocol as a state machine with no sockets (sans-IO).

How it works
------------
The loop around a :class:`WorkerSession` (the worker's connection thread, or a test) calls
:meth:`~WorkerSession.connect` once, :meth:`~WorkerSession.handle` for each message from the
hub, :meth:`~WorkerSession.outcome` (or :meth:`~WorkerSession.lost`) when a slot finishes,
:meth:`~WorkerSession.shutdown` on a stop request and :meth:`~WorkerSession.tick` every turn,
always with the time ``now``; each returns the effects (:mod:`.effects`) to perform.

Credit
    ``HELLO`` announces ``prefetch`` minus what the worker still holds; each ``DONE`` returns
    one credit (the slot's outcome carries it). The hub never sends more than that credit.
Slots and prefetch
    A delivery runs at once in a free slot (:class:`.Run`) or waits in the prefetch buffer. A
    buffer stalled behind busy slots for ``giveback`` seconds is given back (``REJ`` requeue)
    so another worker may run it; the credit it held is withheld and returned (``CRED``) when a
    slot frees, so the hub's view stays true.
Liveness
    A ``PING`` every heartbeat with the number of tasks running. :class:`HubWatch` says
    ``waiting_for_hub``, ``hub_lost`` and ``hub_back`` once per change. A ``PONG`` from another
    hub incarnation, or one that does not know us, or an ``ERR hello``, is answered by a new
    ``HELLO`` listing the deliveries held (so the hub does not send them elsewhere); the PINGs
    queued while the hub was away come back in a burst, and one ``HELLO`` answers the burst.
Shutdown
    Warm: stop consuming (``CONSUME []``), give back the buffer, let running tasks finish until
    the shutdown timeout, then ``BYE`` and :class:`.Stop`. Cold (or timed out): ``BYE`` at once;
    the hub requeues what was running.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from celeriac import _protocol as p

from ..endpoints import parse_tcp
from .effects import Effect, Log, Ready, Run, Send, Stop

__all__ = ["HubWatch", "WorkerConfig", "WorkerSession"]


class HubWatch:
    """Whether the hub answers, as log effects: ``waiting_for_hub`` until it first does (after
    :attr:`FIRST` seconds, then at intervals doubling up to :attr:`EVERY`), ``hub_lost`` once
    when it falls silent for three heartbeats and ``hub_back`` once when it answers again."""

    FIRST = 2.0
    EVERY = 30.0

    def __init__(self, endpoint: str, started: float, heartbeat: float) -> None:
        self.endpoint = endpoint
        self.started = started
        self.silence = 3 * heartbeat
        self.next_log = started + self.FIRST
        self.interval = self.FIRST
        self.last_heard: float | None = None
        self.lost_since: float | None = None

    def heard(self, now: float) -> list[Effect]:
        """The hub sent something."""
        effects: list[Effect] = []
        if self.lost_since is not None:
            silent = round(now - self.lost_since, 1)
            effects.append(
                Log("warning", "hub_back", {"endpoint": self.endpoint, "silent_for": silent})
            )
            self.lost_since = None
        self.last_heard = now
        return effects

    def tick(self, now: float, running: int) -> list[Effect]:
        """What there is to say about the hub at ``now``."""
        if self.last_heard is None:
            return self._waiting(now)
        if self.lost_since is not None or now - self.last_heard <= self.silence:
            return []
        self.lost_since = self.last_heard
        fields = {
            "endpoint": self.endpoint,
            "silent_for": round(now - self.last_heard, 1),
            "running": running,
            "hint": "tasks running here finish and their results wait here until the hub is "
            "back; reconnecting by itself (every second at most); nothing is lost",
        }
        return [Log("warning", "hub_lost", fields)]

    def _waiting(self, now: float) -> list[Effect]:
        if now < self.next_log:
            return []
        self.interval = min(2 * self.interval, self.EVERY)
        self.next_log = now + self.interval
        address = parse_tcp(self.endpoint)
        hint = (
            f"is a hub running at {self.endpoint} (celeriac hub --bind ...), and is its port "
            f"{address.port if address else ''} open from this machine? the worker connects "
            "by itself when it answers"
        )
        fields = {"endpoint": self.endpoint, "waited": round(now - self.started, 1), "hint": hint}
        return [Log("warning", "waiting_for_hub", fields)]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker tells the hub about itself, and its timings."""

    node: str
    endpoint: str
    queues: tuple[str, ...]
    slots: int
    prefetch: int
    heartbeat: float
    giveback: float
    pid: int | None = None
    on_lost: p.OnLost = "requeue"
    declare: p.Declare | None = None
    track_started: bool = False


class WorkerSession:
    """A worker's slots, prefetched deliveries, credit and hub liveness (sans-IO)."""

    def __init__(self, config: WorkerConfig, now: float) -> None:
        self.config = config
        self.free = list(range(config.slots))
        self.busy: dict[int, p.Delivery] = {}
        self.buffer: deque[p.Delivery] = deque()
        #: When the buffer last started waiting behind busy slots (None: not waiting).
        self.stalled_since: float | None = None
        #: Credit held back after giving buffered deliveries back; returned when a slot frees.
        self.withheld = 0
        self.accepting = True
        self.hub_id: str | None = None
        #: When the last HELLO went out without a WELCOME yet (None: none pending).
        self.hello_sent: float | None = None
        self.watch = HubWatch(config.endpoint, now, config.heartbeat)
        self.next_ping = now + config.heartbeat
        self.drain_deadline: float | None = None
        self.cold = False

    def inflight(self) -> tuple[str, ...]:
        """The delivery tags this worker holds (running or prefetched)."""
        return (
            *(d.delivery_tag for d in self.busy.values()),
            *(d.delivery_tag for d in self.buffer),
        )

    # -- local events ---------------------------------------------------------------------------

    def connect(self, now: float) -> list[Effect]:
        """(Re)introduce this worker: ``HELLO`` with its free credit and what it holds."""
        c = self.config
        self.withheld = 0  # the credit announced here is the whole truth for the hub
        self.hello_sent = now
        held = len(self.busy) + len(self.buffer)
        credit = max(0, c.prefetch - held) if self.accepting else 0
        hello = p.Hello(
            role="worker",
            node=c.node,
            pid=c.pid,
            on_lost=c.on_lost,
            queues=c.queues if self.accepting else (),
            declare=c.declare,
            credit=credit,
            inflight=self.inflight(),
        )
        return [Send(hello)]

    def outcome(self, slot: int, message: p.Done | p.Reject, now: float) -> list[Effect]:
        """Slot ``slot`` finished: send its outcome (it returns the slot's credit)."""
        if slot not in self.busy:
            return []
        return [Send(message), *self._slot_done(slot, now)]

    def lost(self, slot: int, now: float) -> list[Effect]:
        """Slot ``slot`` died with its task: hand the task back for another try."""
        delivery = self.busy.get(slot)
        if delivery is None:
            return []
        log = Log("error", "slot_lost_task", {"slot": slot, "task_id": delivery.task.id})
        return [log, *self._give_back((delivery,), credit=1), *self._slot_done(slot, now)]

    def shutdown(self, now: float, timeout: float, *, cold: bool = False) -> list[Effect]:
        """Begin a warm shutdown (drain), or a cold one; a second call may make it cold."""
        self.cold = self.cold or cold
        if self.drain_deadline is not None:
            return []
        self.drain_deadline = now + timeout
        self.accepting = False
        unstarted = tuple(self.buffer)
        self.buffer.clear()
        self.stalled_since = None
        return [
            Send(p.Consume(())),
            *self._give_back(unstarted),
            Log("info", "draining", {"running": len(self.busy)}),
        ]

    # -- time -----------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Effect]:
        """Hub liveness lines, the prefetch give-back, heartbeats, and the end of a drain."""
        effects = self.watch.tick(now, running=len(self.busy))
        if self.stalled_since is not None and now - self.stalled_since > self.config.giveback:
            effects += self._give_back_buffer()
        if now >= self.next_ping:
            self.next_ping = now + self.config.heartbeat
            effects.append(Send(p.Ping(inflight=len(self.busy))))
        return effects + self._drain_end(now)

    def _drain_end(self, now: float) -> list[Effect]:
        if self.drain_deadline is None:
            return []
        effects: list[Effect] = []
        if self.busy and not self.cold and now > self.drain_deadline:
            hint = "running tasks are handed back to the hub for redelivery"
            effects.append(
                Log("warning", "shutdown_timeout", {"running": len(self.busy), "hint": hint})
            )
            self.cold = True
        if self.busy and not self.cold:
            return effects
        return [*effects, Send(p.Bye()), Stop(cold=bool(self.busy))]

    # -- messages from the hub ------------------------------------------------------------------

    def handle(self, message: p.Message, now: float) -> list[Effect]:
        """Process one message from the hub."""
        effects = self.watch.heard(now)
        if isinstance(message, p.Deliver):
            for delivery in message.deliveries:
                effects += self._on_task(delivery, now)
        elif isinstance(message, p.Welcome):
            effects += self._on_welcome(message)
        elif self._stale(message):
            # PINGs queued while the hub was away all come back at once: one HELLO answers them.
            sent = self.hello_sent
            if sent is None or now - sent > self.config.heartbeat:
                effects += self.connect(now)
        elif isinstance(message, p.Ping):
            effects.append(Send(p.Pong()))
        elif isinstance(message, p.Error):
            effects.append(Log("error", "hub_refused_us", {"reason": message.reason}))
        return effects

    def _stale(self, message: p.Message) -> bool:
        """A PONG from another hub or one that does not know us, or ``ERR hello``."""
        if isinstance(message, p.Pong):
            return message.known is False or message.hub != self.hub_id
        return isinstance(message, p.Error) and message.code == "hello"

    def _on_welcome(self, message: p.Welcome) -> list[Effect]:
        first, previous = self.hub_id is None, self.hub_id
        self.hub_id = message.hub
        self.hello_sent = None
        if first:
            fields = {"endpoint": self.config.endpoint, "hub": message.hub}
            return [Log("info", "hub_connected", fields), Ready(message.hub, True)]
        if message.hub != previous:
            return [Log("info", "hub_reconnected", {"hub": message.hub, "previous": previous})]
        return []

    def _on_task(self, delivery: p.Delivery, now: float) -> list[Effect]:
        if not self.accepting:
            return self._give_back((delivery,))
        if self.free:
            return self._run(self.free.pop(), delivery)
        self.buffer.append(delivery)
        if self.stalled_since is None:
            self.stalled_since = now
        return []

    def _run(self, slot: int, delivery: p.Delivery) -> list[Effect]:
        self.busy[slot] = delivery
        effects: list[Effect] = []
        if self.config.track_started:
            effects.append(Send(p.Start((p.TaskRef(delivery.task.id, delivery.tag),))))
        effects.append(Run(slot, delivery))
        return effects

    def _slot_done(self, slot: int, now: float) -> list[Effect]:
        """The slot is free: give it the next buffered delivery, or return withheld credit."""
        del self.busy[slot]
        if self.buffer and self.accepting:
            delivery = self.buffer.popleft()
            self.stalled_since = now if self.buffer else None
            return self._run(slot, delivery)
        self.free.append(slot)
        if self.withheld and self.accepting:
            credit, self.withheld = self.withheld, 0
            return [Send(p.Credit(credit))]
        return []

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

    def _give_back(self, deliveries: tuple[p.Delivery, ...], credit: int = 0) -> list[Effect]:
        """Hand deliveries back to the hub for another consumer (``REJ``, requeue)."""
        rejections = tuple(p.Rejection(d.task.id, d.tag, credit=credit) for d in deliveries)
        return [Send(p.Reject(rejections))] if rejections else []
