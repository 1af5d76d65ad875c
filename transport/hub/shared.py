"""A hub that shares its PostgreSQL schema with other hubs (``celeriac hub --shared``).

How it works
------------
:class:`SharedHubState` is the hub state with its queues in the table instead of RAM (see
:mod:`~celeriac.transport.store_pg_shared` for the rows, leases and notifications):

* a publish is stored (``ON CONFLICT DO NOTHING``) and confirmed, and not queued here: it is
  *let go* (left to the table), as is every message made ready again (requeued after a worker
  was lost or rejected it, a retry's next attempt, a dead letter, a chord's unlock);
* each turn, when something may be there to take (this hub published, another hub said so,
  a peer got credit, or a beat passed), the hub claims for each of its queues as many rows as
  its consumers of that queue have credit for, less what it holds ready, and delivers them
  with the usual machinery (credit, round robin, expiry, ownership, dead letters);
* every beat (``hub_shared_beat_interval``) the hub says it lives,
  takes back the leases of dead hubs, promotes due delayed rows and pushes the results
  another hub stored for a client waiting here (also pushed at once on ``NOTIFY``);
* ready messages whose queue has no consumer here any more are let go for other hubs.
* a worker that comes from another hub (failover) with tasks it holds: their rows are taken
  over here (its outcomes are accepted, the tasks do not run again).

Chords, locks and revocations are rows too (:mod:`.shared_rows`), and the exchange table is
one row every hub adds to and routes with (:mod:`.shared_bindings`). Each keyed actor's key is
served through one hub at a time (:mod:`.shared_actors`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from celeriac import states
from celeriac._log import get_logger

from .. import protocol as p
from .limits import SHARED_BEAT_INTERVAL, HubLimits
from .model import Msg
from .restoring import RowError, load_bindings, load_row, set_aside
from .shared_rows import SharedRows, terminated
from .storage import STORAGE_ERRORS

if TYPE_CHECKING:
    from ..pg_listen import Listener
    from ..store_pg_shared import Claimed, SharedPostgresStore

__all__ = ["SharedHubState"]

_log = get_logger("celeriac.hub")

#: Waiting ids checked against the results table per beat (a missed notification's net).
WAITERS_CHECKED = 1000


class SharedHubState(SharedRows):
    """The hub state of one of several hubs on a PostgreSQL schema; see the module docstring."""

    store: SharedPostgresStore

    def __init__(self, store: Any, clock: Any, **kwargs: Any) -> None:
        super().__init__(store, clock, **kwargs)
        self.store.owner = self.hub_id
        if self.result_expires is not None:
            self.store.tombstone_ttl = self.result_expires
        self._claiming = False
        self._claim_due = True
        self._next_beat = 0.0
        #: Seconds between two beats (``hub_shared_beat_interval``).
        self.beat_interval = SHARED_BEAT_INTERVAL
        #: A commit failed: rows whose release or deletion it carried are still this hub's.
        self._strays = False
        self.listener: Listener | None = None
        self.counters.update(claimed=0, let_go=0, reaped=0)

    def apply_limits(self, limits: HubLimits) -> None:
        """The caps of every hub, and the shared hub's lease and beat."""
        super().apply_limits(limits)
        self.store.lease_ttl = limits.shared_lease_ttl
        self.beat_interval = limits.shared_beat_interval

    def start_listening(self) -> None:
        """Open the ``LISTEN`` connection (the hub server polls its socket)."""
        from ..pg_listen import Listener  # noqa: PLC0415 - psycopg is optional

        self.listener = Listener(self.store.url, self.store.channel)

    def wake_fd(self) -> int | None:
        """The socket whose readiness means another hub said something."""
        return None if self.listener is None else self.listener.fileno()

    def restore(self) -> int:
        """Bindings and revocations only: the queues are in the table, claimed when wanted."""
        self.table = load_bindings(self.store, "bindings")
        self._load_shared_revoked()
        self.store.heartbeat()
        return 0

    # -- letting go, claiming -----------------------------------------------------------------

    def _enqueue(self, msg: Msg, now: float) -> None:
        if p.is_keyed_queue(msg.queue):
            super()._enqueue(msg, now)
        elif not self._shared_chord_holds(msg):
            self._let_go(msg)

    def _make_ready(self, msg: Msg, *, front: bool = False) -> None:
        if self._claiming or p.is_keyed_queue(msg.queue):
            super()._make_ready(msg, front=front)
        else:
            self._let_go(msg)

    def _let_go(self, msg: Msg) -> None:
        """Leave ``msg`` to the table: any hub may claim it (this one too)."""
        self._messages.pop(msg.id, None)
        msg.queued = False
        size = self._body_window.pop(msg.id, None)
        if size is not None:
            self._window_bytes -= size
        self.store.release(msg.id, msg.queue, msg.deliveries, msg.lost)
        self.counters["let_go"] += 1
        self._claim_due = True

    def _done(self, result: p.ResultMessage) -> None:
        super()._done(result)
        if not result.store and result.state != states.RETRY:
            self.store.tombstone(result.id)  # the duplicate memory of every hub

    def _pump_peer(self, peer: Any) -> None:
        super()._pump_peer(peer)
        if peer.credit > 0 and peer.queues:
            self._claim_due = True

    def _wanted(self) -> dict[str, int]:
        """Per queue: the credit of this hub's consumers of it, less what is ready here."""
        wanted: dict[str, int] = {}
        for queue, consumers in self._consumers.items():
            if p.is_keyed_queue(queue):
                continue
            credit = sum(peer.credit for i in consumers if (peer := self._peers.get(i)) is not None)
            ready = self._ready.get(queue)
            n = credit - (len(ready) if ready else 0)
            if n > 0:
                wanted[queue] = n
        return wanted

    def _claim(self) -> None:
        self._claim_due = False
        wanted = self._wanted()
        if not wanted:
            return
        claimed = self.store.claim(wanted)
        if sum(wanted.values()) <= len(claimed):
            self._claim_due = True  # took all it asked: more may be there
        claimed.sort(key=lambda c: (-c.row.priority, c.row.seq))
        for row in claimed:
            self._take(row)

    def _on_hello(self, peer: Any, identity: bytes, msg: p.Hello) -> None:
        """A worker coming from another hub (failover) with tasks it holds: this hub takes
        their rows over first, so its outcomes are accepted here instead of the tasks running
        again once the other hub's leases are taken back."""
        moved = [m for m in msg.inflight if m not in self._messages]
        if moved and msg.role == "worker":
            for claimed in self.store.adopt(moved):
                self._take(claimed, ready=False)
        super()._on_hello(peer, identity, msg)

    def _take(self, claimed: Claimed, *, ready: bool = True) -> None:
        row = claimed.row
        try:
            task = load_row(row)
        except RowError as exc:
            self.counters["set_aside"] += 1
            set_aside(self.store, row, str(exc), self.clock.time())
            self.store.owned.discard(row.id)
            return
        msg = Msg(row.id, row.queue, row.priority, None, task.expires, row.seq, task)
        msg.copy = task.id != row.id
        msg.deliveries, msg.lost = claimed.deliveries, claimed.lost
        self._messages[row.id] = msg
        self.counters["claimed"] += 1
        if not ready:  # held by the worker that says so (see _on_hello)
            return
        if self._is_revoked(task.id) and not msg.copy:
            self._finish_by_hub(msg, states.REVOKED, "TaskRevokedError", "revoked")
            return
        self._claiming = True
        try:
            super()._make_ready(msg)
        finally:
            self._claiming = False

    def _let_go_idle(self) -> None:
        """Ready messages of queues no peer here consumes any more go back to the table."""
        for queue, rq in self._ready.items():
            if not rq or self._consumers.get(queue) or p.is_keyed_queue(queue):
                continue
            while (mid := rq.pop()) is not None:
                msg = self._messages.get(mid)
                if msg is not None and msg.queued and msg.holder is None:
                    self._let_go(msg)

    # -- the turn ---------------------------------------------------------------------------

    def _tick(self) -> None:
        self._bindings_fresh = False
        super()._tick()
        self._hear()
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + self.beat_interval
            self._beat()
        if self._claim_due:
            self._claim()

    def _hear(self) -> None:
        if self.listener is None:
            return
        notes = self.listener.drain(own=self.store.backend_pid())
        if notes.get("q"):
            self._claim_due = True
        if notes.get("b"):
            self.reload_bindings()
        self._push_stored(notes.get("r", set()))
        stop = terminated(notes.get("t", ()))
        self._heard_revoked(notes.get("v", set()) | stop.keys(), stop)

    def commit_failed(self, exc: BaseException) -> None:
        """The turn is lost (see :mod:`.storage`); the next beat gives back what it released."""
        super().commit_failed(exc)
        self._strays = True

    def _beat(self) -> None:
        if self._strays:
            strays = self.store.release_strays(self._messages)
            self._strays = False
            if strays:
                _log.warning("hub_rows_released", count=strays, hub=self.hub_id)
        reaped, _ = self.store.heartbeat()
        if reaped:
            self.counters["reaped"] += reaped
            _log.warning("hub_leases_reaped", count=reaped, hub=self.hub_id)
        self._claim_due = True
        self._extend_keys()
        self._let_go_idle()
        self._push_stored(set(list(self._waiters)[:WAITERS_CHECKED]))

    def _push_stored(self, ids: set[str]) -> None:
        """Push the results stored (by any hub) for ids a client here waits for."""
        waited = [i for i in ids if i in self._waiters]
        if not waited:
            return
        for stored in self.store.results_of(waited):
            self._push_result(p.decode_result(stored.header, stored.body))

    # -- what an operator sees ------------------------------------------------------------------

    def _queue_lengths(self) -> dict[str, dict[str, Any]]:
        """``hub_queues`` for the whole schema: rows ready or delayed in the table, and
        claimed by any hub (``unacked``); consumers are this hub's."""
        out = super()._queue_lengths()
        here = {q: v["ready"] for q, v in out.items()}
        for queue, (ready, delayed, claimed) in self.store.lengths().items():
            entry = out.setdefault(queue, {"ready": 0, "delayed": 0, "unacked": 0, "consumers": []})
            entry["ready"] = ready + here.get(queue, 0)
            entry["delayed"] = delayed
            entry["unacked"] = max(claimed - here.get(queue, 0), 0)
        return dict(sorted(out.items()))

    def _purge(self, queues: set[str] | None) -> dict[str, Any]:
        """``purge``: what this hub holds ready, and the rows no hub holds."""
        answer = super()._purge(queues)
        purged: dict[str, int] = dict(answer["queues"])
        for queue, n in self.store.purge(queues).items():
            purged[queue] = purged.get(queue, 0) + n
        return {"purged": sum(purged.values()), "queues": purged}

    def next_deadline(self) -> float | None:
        """None: the server's poll timeout and the listener's socket wake the loop."""
        return None

    def close(self) -> None:
        """Stop listening and leave the hubs table (leases freed at once for the others)."""
        if self.listener is not None:
            self.listener.close()
        try:
            self.store.leave()
            self.store.commit()
        except Exception as exc:  # the database is away: the reapers will notice
            _log.warning("hub_leave_failed", error=str(exc)[:300])

    def statistics(self) -> dict[str, Any]:
        """The hub's statistics, and the shared schema's hubs."""
        stats = super().statistics()
        shared: dict[str, Any] = {"hub_id": self.hub_id, "owned": len(self.store.owned)}
        try:
            shared["hubs"] = self.store.hubs()  # id -> seconds since it was seen
        except STORAGE_ERRORS as exc:
            shared["hubs"] = str(exc)[:300]
        stats["shared"] = shared
        return stats
