"""The hub's logic as a state object with no sockets: messages in, messages out (sans-IO).

The parts, one job each, stacked so each may use those below it: :mod:`.base` (shared state
and output), :mod:`.results` (results, waiters), :mod:`.queues` (routing, credit, dispatch),
:mod:`.lifecycle` (ack, requeue, dead letters), :mod:`.peers` (liveness, distrust),
:mod:`.taskstates` (custom states, progress meta, extended results);
:mod:`.actors` (keyed actors: placement, one message at a time per key), :mod:`.locks`;
:class:`HubState` dispatches each decoded message to its handler.

How it works
------------
The hub server feeds every received multipart message to :meth:`HubState.handle` with the
sender's identity, and calls :meth:`HubState.tick` once per loop turn. The state writes to its
:class:`~celeriac.transport.store.Store` (visible at once, durable at the next commit) and
appends the frames it wants sent to :attr:`HubState.outbox`. The server commits the store and
only then sends the outbox, so a ``CONF`` (publish confirmed) never leaves before the message is
on disk.

Messages
    A publish (``PUB``) is routed to one or more queues, stored, confirmed, and either made
    ready or, with an ``eta`` in the future, held in a timer heap until it is due. A message
    stays in the store until a worker says ``DONE`` (acknowledgement after the task finished:
    at-least-once), or it expires, or it is rejected without requeue.

Credit
    A worker announces its free slots in ``HELLO`` and each ``DONE``/``CRED`` returns more.
    The hub never sends a worker more tasks than its credit, so nothing piles up in a busy
    worker while another idles (Celery's prefetch complaint), and mailboxes stay bounded.
    Consumers of one queue are served round robin.

Failure
    A worker that says ``BYE``, misses three heartbeats, or can no longer be routed to (the
    server calls :meth:`HubState.peer_unreachable`) loses its deliveries: they go back to the
    front of their queues and are sent to another consumer. A peer that sends a malformed
    frame (anything :func:`~celeriac.transport.protocol.decode` refuses, or a declaration the
    exchange table finds unsound) is logged, counted and distrusted: everything it held is
    requeued and its later messages are dropped. Nothing a peer sends can raise out of
    :meth:`handle`; handlers work on typed, checked messages, so an exception inside one is a
    bug in the hub: it is logged as ``hub_internal_error`` with its traceback, counted, and
    neither blamed on the peer nor allowed to stop the hub.
    A worker that said ``"on_lost": "fail"`` in its ``HELLO`` (``task_reject_on_worker_lost``
    is False) has what it held ended as FAILURE (``WorkerLostError``) instead of requeued,
    unless it said ``BYE`` (a cold shutdown hands tasks back).

Poison messages
    Each time a message's worker is lost while holding it (not ``BYE``, not ``REJ``), its loss
    count grows; at ``max_deliveries`` losses it is not requeued but moved to the
    :data:`POISON_QUEUE` (``celeriac.dead_letter``: stored durably, delivered only to whoever
    consumes that queue, its header annotated with ``dead_letter``), a FAILURE result with
    ``WorkerLostError`` and the reason is stored for its id, and ``statistics()`` counts and
    lists it.

Duplicates
    A publish whose id is queued, recently done, or has a stored result is confirmed again and
    dropped, so clients may resend unconfirmed publishes after a reconnect.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Callable
from typing import Any, Final

from celeriac._log import get_logger
from celeriac.exceptions import FrameError

from .. import protocol as p
from .actors import Actors
from .beat import BeatLeases
from .bodies import without_body
from .control import RemoteControl
from .limits import HubLimits
from .locks import Locks
from .model import ANONYMOUS, BINDINGS_META_KEY, HEARTBEAT_MISSES, HUB_ONLY, Msg, Peer, PeerFault
from .restoring import RowError, load_bindings, load_row, set_aside
from .storage import STORAGE_ERRORS, StorageTrouble
from .taskstates import TaskStates

__all__ = ["HubState"]

#: Seconds between two scans for silent peers: a peer is dropped after
#: ``heartbeat * HEARTBEAT_MISSES`` seconds (6 by default), so a tenth of a second later is
#: nothing, and a hub turning thousands of times a second scans its peers ten times.
SILENCE_CHECK_INTERVAL: Final = 0.1

_log = get_logger("celeriac.hub")


class HubState(RemoteControl, TaskStates, Actors, Locks, StorageTrouble, BeatLeases):
    """Queues, credits, deliveries, results and peers; see the module docstring."""

    #: Monotonic time of the next scan for peers silent too long (see :meth:`_tick`).
    _next_silence_check: float = 0.0

    @functools.cached_property
    def _dispatch(self) -> dict[type, Callable[[Peer | None, bytes, Any], None]]:
        """Handler by message type (built once per hub, on its first message)."""
        return {
            p.Hello: self._on_hello,
            p.Declare: self._on_declare,
            p.Publish: self._on_publish,
            p.Done: self._on_done,
            p.Credit: self._on_credit,
            p.Start: self._on_start,
            p.Reject: self._on_reject,
            p.Consume: self._on_consume,
            p.Wait: self._on_wait,
            p.Stat: self._on_stat,
            p.Forget: self._on_forget,
            p.Revoke: self._on_revoke,
            p.Ping: self._on_ping,
            p.Pong: self._on_pong,
            p.Bye: self._on_bye,
            p.BeatLease: self._on_beat_lease,
            p.BeatSave: self._on_beat_save,
            p.TaskState: self._on_task_state,
            p.InfoQuery: self._on_info,
            p.TaskInfo: self._on_hub_only,
            p.ControlJoin: self._on_control_join,
            p.ControlRequest: self._on_control_request,
            p.ControlReply: self._on_control_reply,
            p.ControlReplyPart: self._on_control_reply_part,
            p.EventBatch: self._on_event_batch,
            p.KeyedSave: self._on_keyed_save,
            p.KeyedIdle: self._on_keyed_idle,
            p.LockAcquire: self._on_lock_acquire,
            p.LockRelease: self._on_lock_release,
            p.LockQuery: self._on_lock_query,
            **dict.fromkeys(HUB_ONLY, self._on_hub_only),
        }

    def restore(self) -> int:
        """Load the stored messages (after a restart); return how many. A row that cannot be
        restored is moved aside with the reason (:mod:`.restoring`), never raised."""
        self.table = load_bindings(self.store, BINDINGS_META_KEY)
        self._load_revoked()
        now = self.clock.time()
        count = 0
        for row in list(self.store.messages(bodies=False)):
            try:
                task = load_row(row)
            except RowError as exc:
                self.counters["set_aside"] += 1
                set_aside(self.store, row, str(exc), now)
                continue
            task = without_body(task)  # bodies stay on disk until delivery (see .bodies)
            msg = Msg(row.id, row.queue, row.priority, row.eta, task.expires, row.seq, task)
            msg.copy = task.id != row.id
            msg.light = True
            self._messages[row.id] = msg
            self._enqueue(msg, now)
            count += 1
        if count:
            self._seq = itertools.count(max(m.seq for m in self._messages.values()) + 1)
        return count

    def handle(self, identity: bytes, frames: list[bytes]) -> None:
        """Process one message from ``identity``; never raises for anything the peer sent."""
        if identity in self._distrusted:
            return
        try:
            msg = p.decode(frames)
        except FrameError as exc:
            self._distrust(identity, str(exc))
            return
        peer = self._peers.get(identity)
        if peer is not None:
            peer.last_seen = self.clock.monotonic()
        elif type(msg) not in ANONYMOUS and type(msg) not in HUB_ONLY:
            # A stranger, or a peer that knew an earlier hub (we restarted): nothing but HELLO
            # is taken from it (see .ownership); it is asked to introduce itself.
            self.counters["refused"] += 1
            self._send(identity, p.Error("hello", hub=self.hub_id))
            return
        try:
            self._dispatch[type(msg)](peer, identity, msg)
            self._cap_credit(identity)
        except PeerFault as exc:
            self._distrust(identity, f"{msg.COMMAND.decode()}: {exc}")
        except STORAGE_ERRORS as exc:  # the disk, not a bug: undo the turn, refuse publishes
            self.store.rollback()
            self.commit_failed(exc)
        except Exception as exc:  # a bug in the hub's own handling: ours, not the peer's
            self.counters["internal_errors"] += 1
            _log.exception(
                "hub_internal_error",
                command=msg.COMMAND.decode(),
                peer=identity[:64],
                error=f"{type(exc).__name__}: {exc}",
            )

    def apply_limits(self, limits: HubLimits) -> None:
        """Take the per-peer caps, the body window and the beat-lease cap from the settings
        (see :mod:`.limits`)."""
        self.max_credit_per_peer = limits.max_credit
        self.max_waits_per_peer = limits.max_waits
        self.body_window_size = limits.body_window_size
        self.max_beat_leases = limits.max_beat_leases

    def _cap_credit(self, identity: bytes) -> None:
        peer = self._peers.get(identity)
        if peer is not None:
            self._cap(peer)

    def tick(self) -> None:
        """Time-driven work: due delayed messages, silent peers, expired results. Never raises:
        an exception here is a bug of the hub's, logged and counted like one in :meth:`handle`
        (a store that cannot write is disk trouble: see :mod:`.storage`)."""
        try:
            self._tick()
        except STORAGE_ERRORS as exc:
            self.store.rollback()
            self.commit_failed(exc)
        except Exception as exc:
            self.counters["internal_errors"] += 1
            _log.exception(
                "hub_internal_error", command="tick", error=f"{type(exc).__name__}: {exc}"
            )

    def _tick(self) -> None:
        now = self.clock.time()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, mid = heapq.heappop(self._delayed)
            msg = self._messages.get(mid)
            if msg is not None and msg.holder is None:
                msg.eta = None
                self._make_ready(msg)
        mono = self.clock.monotonic()
        if self._reprobes and self._reprobes[0] <= mono:
            self._reprobes = [t for t in self._reprobes if t > mono]
            self._ping_workers()
        # Guarded here, not in each: a one-message turn pays no call for what is not due.
        if self.visibility_timeout is not None:
            self._expire_deliveries()
        if self._lock_waiters:
            self._locks_tick()
        if mono >= self._next_silence_check:  # not every turn: a scan of every peer
            self._next_silence_check = mono + SILENCE_CHECK_INTERVAL
            limit = self.heartbeat * HEARTBEAT_MISSES
            for peer in [q for q in self._peers.values() if mono - q.last_seen > limit]:
                self._drop_peer(peer, f"missed heartbeats for {mono - peer.last_seen:.1f}s")
        if now >= self._next_purge:
            self._next_purge = now + 60.0
            purged = self.store.purge_results(now)
            if purged:
                _log.info("results_expired", count=purged)
        if self._confirms:
            self._flush_confirms()

    def wake_fd(self) -> int | None:
        """A socket besides the hub's own whose input should wake the loop (a shared hub's
        PostgreSQL notifications, see :mod:`.shared`); None: none."""
        return None

    def close(self) -> None:
        """The hub stops: let go of what the state holds outside the store (nothing here)."""

    def next_deadline(self) -> float | None:
        """Epoch time of the next delayed message, if any (the server sleeps until then)."""
        return self._delayed[0][0] if self._delayed else None

    def statistics(self) -> dict[str, Any]:
        """Counters and sizes for ``inspect stats`` and logs."""
        return {
            **self.counters,
            "messages": len(self._messages),
            "delayed": len(self._delayed),
            "queues": {q: len(rq) for q, rq in self._ready.items()},
            "peers": {
                p.node: {"role": p.role, "credit": p.credit, "inflight": len(p.inflight)}
                for p in self._peers.values()
            },
            "waiters": len(self._waiters),
            "max_deliveries": self.max_deliveries,
            "dead_letters": list(self._dead_letters),
            "actors": self.keyed_statistics(),
            "locks": len(self._locks),
            "beat": self.beat_statistics(),
            **self._body_statistics(),
        }
