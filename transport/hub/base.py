"""The hub's state and its output: what every part of the hub reads and writes."""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from celeriac._clock import Clock
from celeriac._log import get_logger

from .. import protocol as p
from ..routing import DEAD_LETTER_QUEUE, ExchangeTable
from ..store import Store
from .confirmhold import ConfirmHold
from .model import (
    DEAD_LETTERS_SHOWN,
    RECENT_DONE_LIMIT,
    Msg,
    Peer,
    ReadyQueue,
)
from .recent import RecentIds

_log = get_logger("celeriac.hub")


class HubBase:
    """The state the hub's parts share (see :mod:`celeriac.transport.hub.state`), and how
    they send: messages to peers (``outbox``) and events (``events``)."""

    #: The largest task or result body accepted (``broker_max_message_size``).
    max_message_size: int = 64 * 1024 * 1024
    #: Seconds a FAILURE result is kept (``result_failure_expires``); None: ``result_expires``.
    result_failure_expires: float | None = None
    #: Why publishes are refused now: the store cannot write (see :mod:`.storage`).
    storage_error: str | None = None

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        hub_id: str,
        heartbeat: float = 2.0,
        result_expires: float | None = 86400.0,
        max_deliveries: int = 5,
    ) -> None:
        self.store = store
        self.clock = clock
        self.hub_id = hub_id
        self.heartbeat = heartbeat
        self.result_expires = result_expires
        #: Worker losses a message survives; at this many it goes to :data:`POISON_QUEUE`.
        self.max_deliveries = max(1, int(max_deliveries))
        self._dead_letters: deque[dict[str, Any]] = deque(maxlen=DEAD_LETTERS_SHOWN)
        self._reprobes: list[float] = []
        self.table = ExchangeTable()
        self.outbox: list[list[bytes]] = []
        #: Events for the PUB socket: ``[topic, msgpack header]`` (Celery's event names).
        self.events: list[list[bytes]] = []
        #: False while nobody subscribes to the events (the server follows the subscriptions):
        #: events are then not even built, since they would be dropped unsent.
        self.events_wanted = True
        #: ``(task id, topic)`` of task events a worker sent itself (``-E``), until the hub's
        #: own copy of the same event comes (the worker sends its event first): that copy is
        #: then not published, so each event is on the wire once. Oldest forgotten first.
        self.worker_sent: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._messages: dict[str, Msg] = {}
        #: Ids whose bodies were kept in RAM most recently, and their sizes (see .bodies).
        self._body_window: OrderedDict[str, int] = OrderedDict()
        self._window_bytes = 0
        self._ready: dict[str, ReadyQueue] = {}
        self._consumers: dict[str, list[bytes]] = {}
        self._rr: dict[str, int] = {}
        self._delayed: list[tuple[float, int, str]] = []
        self._peers: dict[bytes, Peer] = {}
        self._waiters: dict[str, set[bytes]] = {}
        self._recent_done = RecentIds(RECENT_DONE_LIMIT)
        self._distrusted: OrderedDict[bytes, None] = OrderedDict()
        self._seq = itertools.count(1)
        self._confirms: dict[bytes, list[str]] = {}
        #: Confirmations held for the RES that confirms them too (see .confirmhold).
        self.confirm_hold = ConfirmHold()
        self._next_purge = 0.0
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "published",
                "duplicates",
                "delivered",
                "redelivered",
                "acked",
                "results_stored",
                "results_pushed",
                "expired",
                "rejected",
                "unroutable",
                "bad_frames",
                "peers_lost",
                "dead_lettered",
                "lost_failed",
                "internal_errors",
                "set_aside",
                "refused",
            ),
            0,
        )

    def _event(self, topic: bytes, event: p.WorkerEvent) -> None:
        if self.events_wanted:
            self.events.append([topic, p.encode_event(event)])

    def _task_event(self, topic: bytes, task_id: str, payload: Callable[[], bytes]) -> None:
        """Publish the hub's own event of a task's life, unless the worker that ran the task
        sent this event already (see :attr:`worker_sent`)."""
        sent = self.worker_sent
        if sent:
            if topic != b"task-started":  # the run has ended: its start is matched or moot
                sent.pop((task_id, b"task-started"), None)
            if (task_id, topic) in sent:
                del sent[(task_id, topic)]
                return
        if self.events_wanted:
            self.events.append([topic, payload()])

    def _send(self, identity: bytes, message: p.Message) -> None:
        frames = p.encode(message)
        frames.insert(0, identity)
        self.outbox.append(frames)

    def _nack(self, identity: bytes, mid: str, reason: str) -> None:
        _log.warning("publish_refused", id=mid, reason=reason)
        self._send(identity, p.Nack((p.Refusal(mid, reason[: p.MAX_TEXT]),)))

    def _flush_confirms(self) -> None:
        """One ``CONF`` per publisher per loop turn listing every id made durable (split past
        ``LIST_BYTES``: a burst of thousands of publishes in one turn is confirmed in several,
        each header under its size limit)."""
        waiters, peers, hold = self._waiters, self._peers, self.confirm_hold
        for identity, confirmed in self._confirms.items():
            ids = confirmed
            peer = peers.get(identity)
            if peer is not None and peer.results_confirm:
                # The ids whose result it waits for: their RES confirms them (.confirmhold).
                waited = [mid for mid in ids if identity in waiters.get(mid, ())]
                if waited:
                    hold.defer(identity, waited)
                    if len(waited) == len(ids):
                        continue
                    held = set(waited)
                    ids = [mid for mid in ids if mid not in held]
            for chunk in p.id_chunks(ids):
                self._send(identity, p.Confirm(chunk))
        self._confirms.clear()

    def release_confirms(self, now: float, *, final: bool = False) -> None:
        """Send as ``CONF`` the held ids that are due (see :mod:`.confirmhold`): those of a
        peer this turn sends something to, or held long enough; ``final``: all of them."""
        hold = self.confirm_hold
        if not hold:
            return
        busy = None if final else {frames[0] for frames in self.outbox}
        for identity, ids in hold.due(now, busy):
            for chunk in p.id_chunks(ids):
                self._send(identity, p.Confirm(chunk))

    def _unroutable_reason(self, task: p.TaskMessage) -> str:
        key = task.routing_key if task.routing_key is not None else task.queue
        return (
            f"unroutable: no queue is bound to exchange {task.exchange or ''!r} with routing "
            f"key {key!r} (declare the queue in task_queues "
            "or let task_create_missing_queues create it; task_unroutable='dead_letter' keeps "
            f"such messages in {DEAD_LETTER_QUEUE!r})"
        )
