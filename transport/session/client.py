"""The client's side of the protocol as a state machine with no sockets (sans-IO).

How it works
------------
The loop around a :class:`ClientSession` (``runtime/client.py``) calls a method for each local
event (:meth:`~ClientSession.publish`, :meth:`~ClientSession.await_result`,
:meth:`~ClientSession.stat`...), :meth:`~ClientSession.handle` for each message from the hub and
:meth:`~ClientSession.tick` every turn, always with the time ``now``; each returns the effects
(:mod:`.effects`) to perform: messages to send, waiters to wake, lines to log.

Publishes
    Pipelined: each is sent at once and kept until the hub confirms it (``CONF``: it is on
    disk). When the session meets a new hub incarnation (a ``WELCOME``, ``PONG`` or ``ERR``
    naming another hub, or a hub that does not know us) it says ``HELLO`` again when needed,
    resends every unconfirmed publish (the hub drops duplicates by id) and asks again (``WAIT``)
    for the results still awaited. A ``NACK`` ends the publish as refused: logged
    (``publish_refused``), kept for ``flush`` to raise, and handed to its waiter; except a
    NACK that comes after we re-sent HELLO to a hub that did not know us and before its
    WELCOME, for a publish resent after that HELLO: the hub answers in order, so that NACK is
    for the older copy (sent before the hub had our declarations) and the resent copy gets its
    own answer. (The nothing-lost state machine found this: the stale NACK reported refused a
    task that then ran.)
Results
    Pushed by the hub (``RES``) because the publish asked for them (``reply``) or a ``WAIT`` did.
    A result nobody awaits yet is kept (at most :data:`UNCLAIMED_LIMIT`), so a later
    :meth:`~ClientSession.await_result` needs no round trip.
Liveness
    A ``PING`` every heartbeat. The hub answers within three heartbeats or is "not answering":
    while publishes are held for longer than the connect timeout the session says
    ``hub_not_answering`` once (with how many it holds), and ``hub_answering_again`` once when
    it hears the hub again.
Failover
    ``broker_url`` may list several hubs (:mod:`.failover`). When the one talked to is lost
    (silent for three heartbeats) the session says ``hub_failover`` and returns :class:`.Dial`
    to the next, then ``HELLO`` there, every unconfirmed publish again (a hub drops a duplicate
    by task id) and ``WAIT`` for the results still awaited; the new hub's ``WELCOME`` is then a
    first one (nothing is sent twice).
"""

from __future__ import annotations

import itertools
import random
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from celeriac import _protocol as p
from celeriac._hub_settings import DEFAULT_MAX_UNCONFIRMED, DEFAULT_MAX_UNCONFIRMED_BYTES
from celeriac._hub_urls import FailoverStrategy

from .effects import Answer, Dial, Effect, Log, Resolve, Send, Settled
from .failover import SILENT_HEARTBEATS, HubRotation

__all__ = ["EXPECTING_LIMIT", "UNCLAIMED_LIMIT", "ClientSession"]

#: Results that arrived before anyone asked for them, kept so a wait needs no round trip.
UNCLAIMED_LIMIT: Final = 20_000
#: Ids published asking for the result (so a wait need not send WAIT).
EXPECTING_LIMIT: Final = 200_000


class ClientSession:
    """A client's publishes, waits and requests, and what it knows of its hub (sans-IO)."""

    def __init__(
        self,
        *,
        endpoint: str,
        declare: p.Declare,
        heartbeat: float,
        connect_timeout: float,
        now: float,
        failover_strategy: str | FailoverStrategy = "round-robin",
        rng: random.Random | None = None,
        max_unconfirmed: int = DEFAULT_MAX_UNCONFIRMED,
        max_unconfirmed_bytes: int = DEFAULT_MAX_UNCONFIRMED_BYTES,
    ) -> None:
        #: The hubs of ``endpoint`` (a ``broker_url``: one address or several).
        self.hubs = HubRotation.from_url(
            endpoint, heartbeat=heartbeat, now=now, strategy=failover_strategy, rng=rng
        )
        #: The address of the hub talked to now.
        self.endpoint = self.hubs.current
        self.declared = declare
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.started = now
        #: Publishes the hub has not confirmed yet, by id (resent to a new hub incarnation),
        #: the bytes of their bodies, and the caps past which :meth:`full` says so.
        self.unconfirmed: dict[str, p.TaskMessage] = {}
        self.unconfirmed_bytes = 0
        self.max_unconfirmed = max_unconfirmed
        self.max_unconfirmed_bytes = max_unconfirmed_bytes
        #: Publishes the hub refused since the last :meth:`take_refused`: (id, reason).
        self.refused: list[tuple[str, str]] = []
        self.waiting: set[str] = set()
        self.unclaimed: OrderedDict[str, p.ResultMessage | p.Refusal] = OrderedDict()
        self.expecting: OrderedDict[str, None] = OrderedDict()
        self.requests: set[int] = set()
        self._rids = itertools.count(1)
        self.hub_id: str | None = None
        #: When the hub last sent anything (None: never), and whether we said it is silent.
        self.last_heard: float | None = None
        self.said_silent = False
        self.next_ping = now + heartbeat
        #: A HELLO sent to a hub that did not know us, not yet WELCOMEd, and the publishes
        #: resent after it: a NACK meanwhile answers an older copy (see :meth:`_on_nack`).
        self.rehello_pending = False
        self.resent: set[str] = set()

    # -- local events ---------------------------------------------------------------------------

    def connect(self) -> list[Effect]:
        """Introduce this client to the hub (with its declarations)."""
        return [Send(p.Hello("client", declare=self.declared, results_confirm=True))]

    def start_at(self, endpoint: str, now: float) -> None:
        """Talk to ``endpoint`` (one of the hubs; the probe found it answering) before any
        traffic: call before :meth:`connect`."""
        self.hubs.turn_to(endpoint, now)
        self.endpoint = self.hubs.current
        self.started = now

    def full(self) -> bool:
        """Whether the publishes held for confirmation reach :attr:`max_unconfirmed` or
        :attr:`max_unconfirmed_bytes` (a publisher should wait: see :class:`Settled`)."""
        return (
            len(self.unconfirmed) >= self.max_unconfirmed
            or self.unconfirmed_bytes >= self.max_unconfirmed_bytes
        )

    def _release(self, task_id: str) -> None:
        held = self.unconfirmed.pop(task_id, None)
        if held is not None:
            self.unconfirmed_bytes -= len(held.body)

    def _settled(self, was_full: bool) -> list[Effect]:
        """Settled when nothing is held any more, or when a full session got room again."""
        return [Settled()] if not self.unconfirmed or (was_full and not self.full()) else []

    def publish(self, message: p.TaskMessage) -> list[Effect]:
        """Send a publish and keep it until the hub confirms it (the caller waits while
        :meth:`full`: this method holds whatever it is given)."""
        self.hold(message)
        return [Send(p.Publish((message,)))]

    def hold(self, message: p.TaskMessage) -> None:
        """:meth:`publish` without its effect: the caller sends ``Publish((message,))`` itself
        (the client's publishing thread, which encodes it directly: ~0.6 us a publish less
        than building and dispatching the effect, issue 18)."""
        if message.id in self.unconfirmed:  # sent again (a retry of the same id): once held
            self._release(message.id)
        self.unconfirmed[message.id] = message
        self.unconfirmed_bytes += len(message.body)
        if message.reply:
            self.expecting[message.id] = None
            if len(self.expecting) > EXPECTING_LIMIT:
                self.expecting.popitem(last=False)

    def declare(self, more: p.Declare) -> list[Effect]:
        """Declare more exchanges and queues (and again after any hub restart)."""
        known = self.declared
        self.declared = p.Declare(known.exchanges + more.exchanges, known.queues + more.queues)
        return [Send(more)]

    def claim(self, task_id: str) -> p.ResultMessage | p.Refusal | None:
        """The result of ``task_id`` if it arrived before anyone waited (then it is handed out,
        no longer kept); None if it has not."""
        return self.unclaimed.pop(task_id, None)

    def await_result(self, task_id: str) -> list[Effect]:
        """Someone waits on ``task_id``: resolve it at once if its result is here, else ask."""
        early = self.claim(task_id)
        if early is not None:
            return [Resolve(task_id, early)]
        self.waiting.add(task_id)
        return [] if task_id in self.expecting else [Send(p.Wait((task_id,)))]

    def stat(self, task_id: str) -> tuple[int, list[Effect]]:
        """Ask the hub where ``task_id`` is; the answer comes as :class:`.Answer` with the rid."""
        return self.request(lambda rid: p.Stat(task_id, rid))

    def request(self, make: Callable[[int], p.Message]) -> tuple[int, list[Effect]]:
        """Send the request ``make(rid)`` (a message carrying ``rid``: ``STAT``, ``BEAT_LEASE``,
        ``COMPAT.INFO``, the lock commands...); the answer comes as :class:`.Answer`."""
        rid = next(self._rids)
        self.requests.add(rid)
        return rid, [Send(make(rid))]

    def cancel(self, rid: int) -> None:
        """Nobody waits for the answer to ``rid`` any more."""
        self.requests.discard(rid)

    def forget(self, task_id: str) -> list[Effect]:
        """Drop what is known of ``task_id`` here and ask the hub to drop its result."""
        self.waiting.discard(task_id)
        self.unclaimed.pop(task_id, None)
        return [Send(p.Forget(task_id))]

    def close(self) -> list[Effect]:
        """Say goodbye (a normal close, not a lost peer)."""
        return [Send(p.Bye())]

    def take_refused(self) -> list[tuple[str, str]]:
        """The publishes refused since the last call: (id, reason)."""
        refused, self.refused = self.refused, []
        return refused

    # -- time -----------------------------------------------------------------------------------

    def answering(self, now: float) -> bool:
        """Whether the hub has answered lately (within three heartbeats)."""
        heard = self.last_heard
        return heard is not None and now - heard < SILENT_HEARTBEATS * self.heartbeat

    def tick(self, now: float) -> list[Effect]:
        """A heartbeat when due, the ``hub_not_answering`` line when it is time to say it, and
        a move to the next hub when the current one is lost (with several hubs)."""
        if self.hubs.due(self.last_heard, now):
            return self._fail_over(now)
        if now < self.next_ping:
            return []
        self.next_ping = now + self.heartbeat
        return [Send(p.Ping()), *self._check_silence(now)]

    def _fail_over(self, now: float) -> list[Effect]:
        """Move to the next hub: introduce ourselves there, resend every unconfirmed publish
        and ask again for the results awaited (the old hub's pushes will not come)."""
        moved = self.hubs.advance(self.last_heard, now)
        self.endpoint = self.hubs.current
        self.hub_id = None  # its WELCOME is a first one: nothing is resent twice
        self.last_heard = None
        self.started = now
        self.next_ping = now + self.heartbeat
        self.rehello_pending = False
        self.resent.clear()
        self.expecting.clear()  # results asked of the old hub: a wait now sends WAIT
        waiting = tuple(self.waiting)
        fields = {**moved.fields, "resending": len(self.unconfirmed), "waiting": len(waiting)}
        return [
            Log(moved.level, moved.event, fields),
            Dial(self.endpoint),
            *self.connect(),
            *(Send(p.Publish((task,))) for task in self.unconfirmed.values()),
            *(Send(p.Wait(chunk)) for chunk in p.id_chunks(waiting)),
        ]

    def _check_silence(self, now: float) -> list[Effect]:
        """Say once (per silence) that publishes wait in memory for a hub that is not there."""
        held = len(self.unconfirmed)
        if self.said_silent or self.answering(now) or not held:
            return []
        since = self.started if self.last_heard is None else self.last_heard
        if now - since < self.connect_timeout:
            return []
        self.said_silent = True
        hint = (
            f"{held} publish(es) held in this process's memory, not yet durable; they are sent "
            "when the hub answers, and lost if this process exits first"
        )
        return [
            Log("warning", "hub_not_answering", {"hub": self.endpoint, "held": held, "hint": hint})
        ]

    def heard(self, now: float) -> list[Effect]:
        """The hub sent something (even something this client cannot decode)."""
        self.last_heard = now
        if not self.said_silent:
            return []
        self.said_silent = False
        return [Log("warning", "hub_answering_again", {"hub": self.endpoint})]

    # -- messages from the hub ------------------------------------------------------------------

    def handle(self, message: p.Message, now: float) -> list[Effect]:
        """Process one message from the hub."""
        effects = self.heard(now)
        if isinstance(message, p.Confirm):
            effects += self._on_confirm(message)
        elif isinstance(message, p.Nack):
            effects += self._on_nack(message)
        elif isinstance(message, p.Result):
            was_full = self.full()
            confirmed = False
            for result in message.results:
                # A RES for a publish held unconfirmed confirms it: the hub sends a task's
                # result only after its publish's commit (we said so in HELLO, and the hub
                # may hold that CONF for it: transport/hub/confirmhold.py).
                if result.id in self.unconfirmed:
                    self._release(result.id)
                    confirmed = True
                effects += self._resolve(result.id, result)
            if confirmed:
                effects += self._settled(was_full)
        elif isinstance(message, p.Reply | p.BeatGrant | p.TaskInfo):
            if isinstance(message.rid, int) and message.rid in self.requests:
                self.requests.discard(message.rid)
                effects.append(Answer(message.rid, message))
        elif isinstance(message, p.Welcome | p.Pong | p.Error):
            effects += self._on_hub_seen(message)
        elif isinstance(message, p.Ping):
            effects.append(Send(p.Pong()))
        return effects

    def _on_confirm(self, message: p.Confirm) -> list[Effect]:
        was_full = self.full()
        for tid in message.ids:
            self._release(tid)
        return self._settled(was_full)

    def _on_nack(self, message: p.Nack) -> list[Effect]:
        was_full = self.full()
        effects: list[Effect] = []
        for refusal in message.refusals:
            tid = refusal.id
            if self.rehello_pending and tid in self.resent:
                # The hub answers one peer in order: this NACK is for a copy sent before our
                # HELLO (e.g. unroutable: the hub had not our declarations yet); the copy
                # resent after the HELLO gets its own answer.
                continue
            effects.append(Log("warning", "publish_refused", {"id": tid, "reason": refusal.reason}))
            self._release(tid)
            self.expecting.pop(tid, None)
            self.refused.append((tid, refusal.reason))
            effects += self._resolve(tid, refusal)
        return effects + self._settled(was_full)

    def _resolve(self, task_id: str, result: p.ResultMessage | p.Refusal) -> list[Effect]:
        self.expecting.pop(task_id, None)  # pushed: a later wait on this id asks (WAIT)
        if task_id in self.waiting:
            self.waiting.discard(task_id)
            return [Resolve(task_id, result)]
        self.unclaimed[task_id] = result  # if evicted from here, get() asks the hub (WAIT)
        if len(self.unclaimed) > UNCLAIMED_LIMIT:
            self.unclaimed.popitem(last=False)
        return []

    def _on_hub_seen(self, message: p.Welcome | p.Pong | p.Error) -> list[Effect]:
        """WELCOME, PONG or ERR: notice a new hub incarnation and catch it up."""
        if isinstance(message, p.Error) and message.code != "hello":
            return [Log("error", "hub_refused", {"code": message.code, "reason": message.reason})]
        if isinstance(message, p.Welcome) and message.hub == self.hub_id:
            self.rehello_pending = False
            self.resent.clear()
        hub = message.hub
        unknown = isinstance(message, p.Error) or (
            isinstance(message, p.Pong) and message.known is False
        )
        if hub == self.hub_id and not unknown:
            return []
        welcome = isinstance(message, p.Welcome)
        effects: list[Effect] = []
        if not welcome and (unknown or self.hub_id is not None):
            effects += self.connect()
            self.rehello_pending = True
        first = self.hub_id is None
        self.hub_id = hub
        if welcome:
            self.rehello_pending = False
            self.resent.clear()
        if first and welcome:
            return effects
        self.expecting.clear()
        if self.rehello_pending:
            self.resent.update(self.unconfirmed)
        waiting = tuple(self.waiting)
        fields = {"hub": hub, "resending": len(self.unconfirmed), "waiting": len(waiting)}
        effects.append(Log("info", "hub_changed", fields))
        effects += [Send(p.Publish((task,))) for task in self.unconfirmed.values()]
        effects += [Send(p.Wait(chunk)) for chunk in p.id_chunks(waiting)]
        return effects
