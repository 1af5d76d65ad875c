"""The turn of a hub that shares its PostgreSQL schema (:mod:`.store_pg_shared`): the writes it
queues and sends in one go at the commit.

A turn's message writes are kept by id (a publish, the rewrite of a row this hub owns, a
deletion), with the rows to give back, the tombstones of results not stored and what to
``NOTIFY`` the other hubs (one payload list per kind: see :mod:`.pg_listen`); the reads that
must see them (a row's payload, results) look here first. :meth:`SharedTurn._now_execute`
sends them before a statement that must run now (a claim, a lock...), so that statement sees
this turn's rows. The rows' meaning (ownership, leases, chords) is :mod:`.store_pg_shared`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from .hub.limits import SHARED_LEASE_TTL
from .pg_connect import Conn, connect
from .pg_listen import note_payloads
from .pg_shared_sql import shared_sql
from .store import StoredMessage, StoredResult
from .store_postgres import PostgresStore

__all__ = ["PendingPublish", "SharedTurn"]


@dataclass(slots=True)
class PendingPublish:
    """A row published this turn, and the hub holding it (None: any hub may claim it)."""

    msg: StoredMessage
    owner: str | None


class SharedTurn(PostgresStore):
    """A shared-schema store's state between two commits; see the module docstring."""

    sole_writer = False

    def __init__(self, url: Any, *, sync: str = "normal", migrate: bool = False) -> None:
        #: This hub's id (set by the hub state before any claim).
        self.owner = ""
        #: Ids of rows this hub claimed and still holds.
        self.owned: set[str] = set()
        #: The turn's message writes by id: a publish, a rewrite of an owned row, a deletion.
        self._ops: dict[str, PendingPublish | StoredMessage | None] = {}
        #: Owned rows to give back at the commit: id -> (deliveries, lost).
        self._released: dict[str, tuple[int, int]] = {}
        #: Ids done without a stored result (``ignore_result``), kept as tombstones this long.
        self._tombstones: dict[str, None] = {}
        self.tombstone_ttl = 86400.0
        #: Seconds this hub may go unseen before its leases may be taken back.
        self.lease_ttl = SHARED_LEASE_TTL
        #: What the commit tells the other hubs: kind -> names (see the module docstring).
        self._notes: dict[str, dict[str, None]] = {"q": {}, "r": {}, "v": {}, "t": {}, "b": {}}
        super().__init__(url, sync=sync, migrate=migrate)
        self.channel = f"celeriac.{self.url.schema}"
        # Rows a hub that was not shared left keep their order before the new ones.
        self._now_execute("seq_floor", ())
        self.commit()

    def _open(self) -> Conn:
        return connect(self.url, self.sync, shared=True)

    def _sql_of(self, key: str) -> str:
        return self._shared_sql[key]

    @functools.cached_property
    def _shared_sql(self) -> dict[str, str]:
        return shared_sql(self.url.schema)

    # -- the turn's writes --------------------------------------------------------------------

    def add_message(self, msg: StoredMessage) -> None:
        """A publish (the row is not this hub's), or the rewrite of a row this hub holds."""
        if msg.id in self.owned:
            self._ops[msg.id] = msg
        else:
            self._ops[msg.id] = PendingPublish(msg, None)
            self._notes["q"][msg.queue] = None

    def remove_message(self, message_id: str) -> None:
        """Delete a row (acknowledged, expired, rejected)."""
        self._ops[message_id] = None
        self._released.pop(message_id, None)

    def release(self, message_id: str, queue: str, deliveries: int, lost: int) -> None:
        """Give a row back to the queue at the commit (a publish of this turn: nothing to do)."""
        if message_id in self.owned:
            self._released[message_id] = (deliveries, lost)
        self._notes["q"][queue] = None

    def put_result(self, result: Any, expires: float | None) -> None:
        """Store a result, and tell the other hubs at the commit (one may hold its waiter)."""
        super().put_result(result, expires)
        self._notes["r"][result.id] = None

    def tombstone(self, task_id: str) -> None:
        """Remember at the commit that ``task_id`` ran though it stored no result: a publish
        of it again, through any hub, is a duplicate (until :attr:`tombstone_ttl`)."""
        self._tombstones[task_id] = None

    def get_payload(self, message_id: str) -> tuple[bytes, bytes] | None:
        """A row's header and body (this turn's write of it first)."""
        if message_id not in self._ops:
            return super().get_payload(message_id)
        op = self._ops[message_id]
        msg = op.msg if isinstance(op, PendingPublish) else op
        return None if msg is None else (msg.header, msg.body)

    def results_among(self, task_ids: list[str]) -> set[str]:
        """Always asked: other hubs store results this hub never saw."""
        found = {i for i in task_ids if self._results.get(i) is not None}
        ask = [i for i in task_ids if i not in self._results]
        if ask:
            with self._guard() as conn:
                rows = conn.execute(self._sql_of("results_among"), (ask, ask)).fetchall()
            found.update(str(r[0]) for r in rows)
        return found

    def results_of(self, task_ids: list[str]) -> list[StoredResult]:
        """The stored results of ``task_ids`` (those that have one), in one query."""
        found = [e[0] for i in task_ids if (e := self._results.get(i)) is not None]
        ask = [i for i in task_ids if i not in self._results]
        if ask:
            with self._guard() as conn:
                rows = conn.execute(self._sql_of("results_of"), (ask,)).fetchall()
            found += [StoredResult(str(r[0]), str(r[1]), bytes(r[2]), bytes(r[3])) for r in rows]
        return found

    def _pending(self) -> bool:
        pending = self._ops or self._released or self._tombstones
        return super()._pending() or bool(pending) or self._noted()

    def _noted(self) -> bool:
        return any(self._notes.values())

    def _drop_pending(self) -> None:
        super()._drop_pending()
        self._ops.clear()
        self._released.clear()
        self._tombstones.clear()
        for names in self._notes.values():
            names.clear()

    def _flush_more(self, cur: psycopg.Cursor[Any]) -> None:
        pubs = [op for op in self._ops.values() if isinstance(op, PendingPublish)]
        puts = [op for op in self._ops.values() if isinstance(op, StoredMessage)]
        gone = [k for k, op in self._ops.items() if op is None]
        if pubs:
            cur.execute(self._sql_of("pub"), (*_columns([p.msg for p in pubs]), _owners(pubs)))
        if puts:
            cur.execute(self._sql_of("put"), (self.owner, self.lease_ttl, *_columns(puts)))
        if gone:
            cur.execute(self._sql_of("del"), (gone,))
            self.owned.difference_update(gone)
        if self._released:
            ids = list(self._released)
            counts = list(self._released.values())
            cur.execute(
                self._sql_of("release"),
                (ids, [d for d, _ in counts], [n for _, n in counts], self.owner),
            )
            self.owned.difference_update(ids)
        if self._tombstones:
            cur.execute(self._sql_of("tombstones"), (self.tombstone_ttl, list(self._tombstones)))
        for kind, names in self._notes.items():
            for payload in note_payloads(kind, names):
                cur.execute(self._sql_of("notify"), (self.channel, payload))

    def _now_execute(self, key: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Send what is pending, then run one statement in the turn's transaction."""
        self._flush()
        with self._guard() as conn:
            cur = conn.execute(self._sql_of(key), args)
            return cur.fetchall() if cur.description is not None else []

    def bindings_changed(self) -> None:
        """Tell the other hubs at the commit that the exchange table row changed."""
        self._notes["b"]["*"] = None

    def queues_noted(self, queues: Iterable[str]) -> None:
        """Tell the other hubs at the commit that these queues have rows to claim."""
        self._notes["q"].update(dict.fromkeys(queues))


def _columns(rows: list[StoredMessage]) -> tuple[list[Any], ...]:
    return (
        [m.id for m in rows],
        [m.queue for m in rows],
        [m.priority for m in rows],
        [m.eta for m in rows],
        [m.seq for m in rows],
        [m.header for m in rows],
        [m.body for m in rows],
    )


def _owners(pubs: list[PendingPublish]) -> list[str | None]:
    return [p.owner for p in pubs]
