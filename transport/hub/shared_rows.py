"""A shared hub's chords, locks and revocations: rows every hub of the schema reads and writes
(its exchange table: :mod:`.shared_bindings`).

How it works
------------
* **Chords**: the unlock message is published held (owner ``~chord``, never claimed) with a
  counter row ``chords(id, remaining)``. A header task that ends (acknowledged, ended by the
  hub, dead-lettered, refused as revoked) deletes its row and counts the chord down in one
  statement, in the transaction of its result; the hub that takes the counter to zero releases
  the unlock, whichever hub the other header tasks ended through: the body runs once.
* **Locks**: ``locks(name, owner, expires)``, taken by a conditional upsert (free, expired, or
  already the asker's: a resent request is harmless), released by its owner only. A blocking
  acquire waits at the hub its client asked, which tries again each turn until it gets the
  lock or the wait runs out.
* **Beat leases**: read from their row, locked until the commit, every time (never from
  the hub's RAM): two hubs asked for one schedule's lease at once grant it once.
* **Revocations**: ``revoked(id, at)``; the rows no hub holds are deleted and end REVOKED at
  once; the ids go to the other hubs by ``NOTIFY`` (each keeps the set in RAM, read at start),
  which end the ones they hold ready and tell the workers holding the others, with
  ``terminate`` and its signal when the revoke had them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgpack

from celeriac import states
from celeriac._log import get_logger

from .. import protocol as p
from .beat import _LEASE_KEY, Lease
from .locks import _Waiter
from .model import Msg, Peer
from .revocations import MAX_REVOKED
from .shared_actors import SharedActors

if TYPE_CHECKING:
    from ..store_pg_shared import SharedPostgresStore

__all__ = ["SharedRows", "terminate_note", "terminated"]

_log = get_logger("celeriac.hub")


class SharedRows(SharedActors):
    """Chords, locks and revocations as shared rows; see the module docstring."""

    store: SharedPostgresStore
    _claim_due: bool

    def _let_go(self, msg: Msg) -> None:
        raise NotImplementedError  # SharedHubState

    # -- chords -------------------------------------------------------------------------------

    def _shared_chord_holds(self, msg: Msg) -> bool:
        """A chord's unlock just published: its counter row, and the row held; True if so."""
        size = msg.task.chord_size
        if size is None or size <= 0 or msg.copy or msg.id in self.store.owned:
            return False
        self.store.chord_open(msg.id, size)
        self.store.hold(msg.id)
        self._messages.pop(msg.id, None)
        return True

    def _chord_member_ended(self, msg: Msg) -> None:
        if msg.task.chord_size is not None and not msg.copy:
            self.store.chord_drop(msg.id)
        chord_id = msg.task.chord
        if chord_id is None or msg.copy or msg.task.dead_letter is not None:
            return  # a dead letter was counted when it was set aside
        left = self.store.chord_count_down(chord_id, msg.id)
        if left == 0:
            _log.info("chord_unlocked", chord=chord_id)
            self.store.unhold(chord_id)
            self._claim_due = True

    # -- locks --------------------------------------------------------------------------------

    def _on_lock_acquire(self, peer: Peer | None, identity: bytes, msg: p.LockAcquire) -> None:
        if self.store.lock(msg.name, msg.owner, msg.expire):
            self._answer(identity, msg.name, "ACQUIRED", msg.rid)
        elif msg.wait:
            until = self.clock.monotonic() + msg.wait
            waiter = _Waiter(identity, msg.owner, msg.expire, msg.rid, until)
            self._lock_waiters.setdefault(msg.name, deque()).append(waiter)
        else:
            self._answer(identity, msg.name, "LOCKED", msg.rid)

    def _on_lock_release(self, peer: Peer | None, identity: bytes, msg: p.LockRelease) -> None:
        released = self.store.unlock(msg.name, msg.owner)
        self._answer(identity, msg.name, "RELEASED" if released else "NOT_HELD", msg.rid)

    def _on_lock_query(self, peer: Peer | None, identity: bytes, msg: p.LockQuery) -> None:
        state = "LOCKED" if self.store.locked(msg.name) else "UNLOCKED"
        self._answer(identity, msg.name, state, msg.rid)

    def _locks_tick(self) -> None:
        """Each turn while someone waits: the first waiter still here tries again; waiters
        whose wait ran out are answered ``LOCKED``."""
        mono = self.clock.monotonic()
        for name in list(self._lock_waiters):
            waiters = self._lock_waiters[name]
            while waiters and waiters[0].identity not in self._peers:
                waiters.popleft()
            if waiters and self.store.lock(name, waiters[0].owner, waiters[0].expire):
                first = waiters.popleft()
                self._answer(first.identity, name, "ACQUIRED", first.rid)
            for waiter in [w for w in waiters if w.until <= mono]:
                waiters.remove(waiter)
                if waiter.identity in self._peers:
                    self._answer(waiter.identity, name, "LOCKED", waiter.rid)
            if not waiters:
                del self._lock_waiters[name]

    # -- beat leases -------------------------------------------------------------------------

    def _lease(self, key: str) -> Lease | None:
        """Read from the table each time, its row locked until the commit (never cached:
        another hub may have granted it)."""
        holder, expires = msgpack.unpackb(
            self.store.meta_locked(_LEASE_KEY + key, msgpack.packb(["", 0.0]))
        )
        if not holder:
            self._leases.pop(key, None)  # only leases are cached (hub_max_beat_leases)
            return None
        lease = self._leases[key] = Lease(str(holder), float(expires))
        return lease

    # -- revocations --------------------------------------------------------------------------

    def _load_shared_revoked(self) -> None:
        self._revoked().update(self.store.revoked(MAX_REVOKED))

    def _on_revoke(self, peer: Peer | None, identity: bytes, msg: p.Revoke) -> None:
        super()._on_revoke(peer, identity, msg)
        signal = (msg.signal or "") if msg.terminate else None
        for mid in self.store.revoke(list(msg.ids), signal):
            self._remember_done(mid)
            self._store_result(self._hub_result(mid, states.REVOKED, "TaskRevokedError", "revoked"))

    def _heard_revoked(self, ids: set[str], terminate: dict[str, str | None]) -> None:
        """Ids another hub revoked: remembered; those held here ready end, those a worker
        holds are revoked at that worker (stopped if running, for those in ``terminate``:
        id -> signal)."""
        if not ids:
            return
        revoked, now = self._revoked(), self.clock.time()
        by_holder: dict[tuple[bytes, bool, str | None], list[str]] = {}
        for mid in ids:
            revoked.setdefault(mid, now)
            held = self._messages.get(mid)
            if held is not None and held.holder is not None:
                how = (held.holder, mid in terminate, terminate.get(mid))
                by_holder.setdefault(how, []).append(mid)
            else:
                self._revoke_queued(mid)
        while len(revoked) > MAX_REVOKED:
            del revoked[next(iter(revoked))]
        for (holder, stop, signal), held_ids in by_holder.items():
            self._send(holder, p.RevokeHeld(tuple(held_ids), stop, signal))


def terminate_note(signal: str, task_id: str) -> str:
    """A ``t:`` name: a revoke with ``terminate``, its signal and id (read by
    :func:`terminated`)."""
    return f"{signal}:{task_id}"


def terminated(names: Iterable[str]) -> dict[str, str | None]:
    """The ``t:`` names heard: task id -> the signal to stop it with (None: the default)."""
    out: dict[str, str | None] = {}
    for name in names:
        signal, sep, task_id = name.partition(":")
        if sep and task_id:
            out[task_id] = signal or None
    return out
