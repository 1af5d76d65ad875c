"""The store of a hub that shares its PostgreSQL schema with other hubs (``celeriac hub --shared``).

How it works
------------
Several hubs run on one schema, each with its own peers; none keeps the queues in RAM. The
``messages`` table *is* the queue:

* **Publish** is ``INSERT ... ON CONFLICT (id) DO NOTHING`` (a publisher resending a task id
  after a reconnect, to this hub or another, changes nothing), with ``owner`` NULL: any hub may
  take it. A row whose ``eta`` is in the future waits (``eta`` is its run_at); once due, any
  hub's :meth:`SharedPostgresStore.heartbeat` sets it to NULL, so the claim index
  (``WHERE owner IS NULL AND eta IS NULL``) never walks over delayed rows.
* **Claim**: a hub takes at most as many rows per queue as its own consumers have credit for,
  ``FOR UPDATE SKIP LOCKED`` (two hubs never wait for, nor take, the same row), setting
  ``owner`` to its id and ``lease_until``. Only then does it deliver them, after the commit.
* **Leases**: a hub refreshes its row in ``hubs`` (``seen_at``) every beat
  (``hub_shared_beat_interval``); that keeps every lease it holds alive. Any hub's reaper
  returns to the queue (``owner`` NULL) the rows whose lease ran out and whose owner was not
  seen for :attr:`~SharedPostgresStore.lease_ttl` (``hub_shared_lease_ttl``): a hub
  killed -9 loses nothing confirmed, its tasks run through the others (at-least-once: what
  its workers were running may run again).
* **Acknowledgement** deletes the row; a requeue (worker lost, rejected, retried) releases it
  with its delivery and loss counts, for any hub to claim again.
* **Wake-ups**: each turn's commit carries one ``NOTIFY`` on the schema's channel per kind:
  ``q:`` the queues that got rows to claim, ``r:`` the ids that got a result (the hub holding
  a client waiting for one reads it and pushes it), ``v:`` revoked ids, ``t:`` those revoked
  with ``terminate`` (``SIGNAL:id``: a worker running one is stopped), ``b:`` the exchange
  table changed (see :mod:`.hub.shared_bindings`). See :mod:`.pg_listen`.
* **Chords**: ``chords(id, remaining)``; a header task's row is deleted and its chord counted
  down in one statement (``RETURNING``): the unlock is released once, by whichever hub takes
  the counter to zero, and a header acknowledged twice (after a lease was lost) counts once.
* **Duplicates**: a task done without a result (``ignore_result``) leaves a tombstone in
  ``done`` (expiring with ``result_expires``), so a resend of it through any hub is dropped
  as one with a stored result is.
* **Locks**: rows taken by a conditional upsert (free, expired, or already the asker's).
* **Beat leases**: their metadata row is read ``FOR UPDATE`` (:meth:`meta_locked`): two hubs
  granting one schedule's lease at once take turns, the second sees the first's holder.

A hub owns only rows it claimed: :meth:`add_message` of another id is a publish, of an owned
id a rewrite (a retry's next attempt, a dead letter) that keeps it owned until released.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from .hub.shared_rows import terminate_note
from .store import StoredMessage
from .store_pg_shared_turn import PendingPublish, SharedTurn

__all__ = ["CHORD_HOLD", "Claimed", "SharedPostgresStore"]

#: The owner of a chord's unlock row while its header runs: never claimed, never reaped.
CHORD_HOLD: Final = "~chord"
#: Rows promoted or reaped per statement (the rest at the next beat).
SWEEP_LIMIT: Final = 10_000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row a hub claimed: the message, and its counts kept across hubs."""

    row: StoredMessage
    deliveries: int
    lost: int


class SharedPostgresStore(SharedTurn):
    """The store of one of several hubs on a schema; see the module docstring (the turn's
    queued writes and notifications: :class:`~.store_pg_shared_turn.SharedTurn`)."""

    # -- claims, leases, sweeps ---------------------------------------------------------------

    def backend_pid(self) -> int | None:
        """The server process of this store's connection (None: not connected)."""
        return None if self._conn is None else self._conn.info.backend_pid

    def claim(self, wanted: dict[str, int]) -> list[Claimed]:
        """Take up to ``wanted[queue]`` ready rows of each queue for this hub."""
        queues = [q for q, n in wanted.items() if n > 0]
        if not queues:
            return []
        rows = self._now_execute(
            "claim", (queues, [wanted[q] for q in queues], self.owner, self.lease_ttl)
        )
        return self._claimed(rows)

    def _claimed(self, rows: list[tuple[Any, ...]]) -> list[Claimed]:
        claimed = [
            Claimed(StoredMessage(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), bytes(r[6])), *r[7:])
            for r in rows
        ]
        self.owned.update(c.row.id for c in claimed)
        return claimed

    def adopt(self, ids: list[str]) -> list[Claimed]:
        """Take over the rows a worker says it holds (it came from another hub)."""
        rows = self._now_execute("adopt", (self.owner, self.lease_ttl, ids))
        return self._claimed(rows)

    def heartbeat(self) -> tuple[int, int]:
        """Say this hub lives, take back the leases of dead hubs, promote due delayed rows:
        ``(rows reaped, rows promoted)``; their queues are told at the commit."""
        self._now_execute("seen", (self.owner,))
        reaped = self._now_execute("reap", (self.lease_ttl, SWEEP_LIMIT))
        promoted = self._now_execute("promote", (SWEEP_LIMIT,))
        self._now_execute("forget_hubs", (self.lease_ttl * 60,))
        self._now_execute("forget_locks", ())
        self._now_execute("forget_done", (SWEEP_LIMIT,))
        for row in (*reaped, *promoted):
            self._notes["q"][str(row[0])] = None
        return len(reaped), len(promoted)

    def hubs(self) -> dict[str, float]:
        """The hubs of the schema and the seconds since each was seen."""
        return {str(h): round(float(a), 3) for h, a in self._now_execute("hubs", ())}

    def leave(self) -> None:
        """A clean stop: this hub's rows go back to the queue, its ``hubs`` row and the keyed
        actors' keys it serves go."""
        self._now_execute("leave_rows", (self.owner,))
        self._now_execute("leave", (self.owner,))
        self._now_execute("leave_keys", (self.owner,))
        self.owned.clear()

    def release_strays(self, kept: Iterable[str]) -> int:
        """Give back the rows this hub owns but no longer holds (after a failed commit lost
        their release or deletion): how many."""
        keep = list(kept)
        rows = self._now_execute("strays", (self.owner, keep))
        self.owned.intersection_update(keep)
        for (queue,) in rows:
            self._notes["q"][str(queue)] = None
        return len(rows)

    def lengths(self) -> dict[str, tuple[int, int, int]]:
        """Per queue, in the whole table: rows ready, delayed, claimed by a hub."""
        rows = self._now_execute("lengths", ())
        return {str(q): (int(r), int(d), int(c)) for q, r, d, c in rows}

    def purge(self, queues: Iterable[str] | None) -> dict[str, int]:
        """Delete the rows no hub holds (of ``queues``; None: all): how many per queue."""
        if queues is None:
            rows = self._now_execute("purge_all", ())
        else:
            rows = self._now_execute("purge", (list(queues),))
        purged: dict[str, int] = {}
        for (queue,) in rows:
            purged[str(queue)] = purged.get(str(queue), 0) + 1
        return purged

    # -- chords, locks, revocations -----------------------------------------------------------

    def hold(self, msg_id: str) -> None:
        """Keep a row published this turn from every hub's claims (a chord's unlock)."""
        op = self._ops.get(msg_id)
        if isinstance(op, PendingPublish):
            op.owner = CHORD_HOLD

    def chord_open(self, chord_id: str, size: int) -> None:
        """Count a chord's header tasks (a resent unlock changes nothing)."""
        self._now_execute("chord_open", (chord_id, size))

    def chord_count_down(self, chord_id: str, member_id: str) -> int | None:
        """A header task ended: its row goes and the counter drops, in one statement, only
        if the row was there (so once); the counter left, or None if not counted."""
        if member_id in self.owned:
            self._ops.pop(member_id, None)  # its deletion is this statement's
            rows = self._now_execute("chord_down_row", (member_id, chord_id))
            self.owned.discard(member_id)
        else:  # never claimed (refused as revoked, ended on arrival): counted as it ends
            rows = self._now_execute("chord_down", (chord_id,))
        return int(rows[0][0]) if rows else None

    def chord_drop(self, chord_id: str) -> None:
        """The unlock ended: its counter goes."""
        self._now_execute("chord_drop", (chord_id,))

    def unhold(self, chord_id: str) -> None:
        """The chord's header is done: its unlock may be claimed by any hub."""
        op = self._ops.get(chord_id)
        if isinstance(op, PendingPublish):
            op.owner = None
            self._notes["q"][op.msg.queue] = None
            return
        for (queue,) in self._now_execute("unhold", (chord_id, CHORD_HOLD)):
            self._notes["q"][str(queue)] = None

    def lock(self, name: str, owner: str, expire: float) -> bool:
        """Take (or extend, for its owner) a lock; whether it is held by ``owner`` now."""
        return bool(self._now_execute("lock", (name, owner, expire)))

    def locked(self, name: str) -> bool:
        """Whether anyone holds the lock now."""
        return self.lock_owner(name) is not None

    def unlock(self, name: str, owner: str) -> bool:
        """Release a lock ``owner`` holds; whether it did."""
        return bool(self._now_execute("unlock", (name, owner)))

    def lock_owner(self, name: str) -> str | None:
        """Who holds the lock now (None: nobody)."""
        rows = self._now_execute("lock_owner", (name,))
        return str(rows[0][0]) if rows else None

    def locks_extend(self, names: list[str], owner: str, expire: float) -> set[str]:
        """Extend the locks among ``names`` that ``owner`` holds: those it still holds."""
        return {str(r[0]) for r in self._now_execute("locks_extend", (expire, owner, names))}

    def revoke(self, ids: list[str], signal: str | None = None) -> list[str]:
        """Record revoked ids, drop their rows no hub holds: the ids dropped. ``signal``
        (``terminate``; ``""``: the worker's default): the other hubs also stop them where a
        worker runs them."""
        self._now_execute("revoke", (ids,))
        dropped = [str(r[0]) for r in self._now_execute("revoke_queued", (ids,))]
        self._notes["v"].update(dict.fromkeys(ids))
        if signal is not None:
            self._notes["t"].update(dict.fromkeys(terminate_note(signal, i) for i in ids))
        return dropped

    def meta_locked(self, key: str, empty: bytes) -> bytes:
        """A metadata value read for a change: its row (created as ``empty`` if missing) stays
        locked until the commit, so two hubs changing it (a beat lease) take turns."""
        if key in self._meta and self._meta[key] is not None:
            return self._meta[key] or empty
        self._now_execute("meta_row", (key, empty))
        rows = self._now_execute("meta_locked", (key,))
        return bytes(rows[0][0]) if rows else empty

    def revoked(self, limit: int) -> dict[str, float]:
        """The most recent revoked ids and when."""
        return {str(i): float(a) for i, a in self._now_execute("revoked", (limit,))}
