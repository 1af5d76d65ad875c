"""The hub's durable store in PostgreSQL: the :class:`~.store.Store` interface on one connection.

How it works
------------
The same tables as :class:`~.store.SQLiteStore` (``messages``, ``results``, ``meta``,
``set_aside``), in the schema named by the store URL (see :mod:`.pg_schema`), and the same
semantics: writes are visible at once to this store's reads, durable at :meth:`commit`, which
the hub's loop calls once per turn (group commit) before it confirms publishes.

Writes are not sent one by one (a round trip each): the turn's writes are kept in RAM, the
latest per key (a message row or its deletion, a result or its deletion, a metadata value),
and sent when the turn commits as at most one multi-row ``INSERT ... ON CONFLICT`` (from
``unnest`` of arrays) and one ``DELETE ... = ANY`` per table, in one pipeline with the
``COMMIT``: one round trip for the turn. Only the last write of a key counts, so the order of
keys does not matter. A read by key is answered from the pending writes when one is for that
key, else by one ``SELECT`` (pending writes of other keys cannot change its answer); a read
of everything (``messages()``) and the rare writes that read rows (``purge_results``,
``set_aside``) first send what is pending. So every read sees every earlier write.

One hub per schema: the connection holds the schema's lock (see :mod:`.pg_connect`).

PostgreSQL going away (a restart, a lost connection) is a :class:`~.store.StoreUnavailable`,
never a crash: the write or commit that met it fails (the hub refuses that turn's publishes,
see :mod:`.hub.storage`), the connection is dropped, and a later write reconnects, no sooner
than an exponential backoff allows (:data:`RETRY_MIN` doubling to :data:`RETRY_MAX`). Until
:meth:`rollback` is called after a failure, :meth:`commit` keeps failing: writes lost with
the connection can never be confirmed by a later successful commit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg import sql

from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured

from .idfilter import IdFilter
from .pg_connect import Conn, connect, first_line, where
from .pg_schema import StoreURL, describe, parse_store_url, prepare_schema
from .store import Store, StoredMessage, StoredResult, StoreUnavailable

__all__ = ["RETRY_MAX", "RETRY_MIN", "PostgresStore"]

_log = get_logger("celeriac.hub")

#: Seconds before the first reconnection attempt after PostgreSQL went away; doubles per
#: failed attempt up to :data:`RETRY_MAX`.
RETRY_MIN: Final = 0.5
RETRY_MAX: Final = 15.0
#: Rows fetched per round trip when the hub restores its queue.
RESTORE_CHUNK: Final = 5000

_SQL: Final = {
    "add": "INSERT INTO {s}.messages SELECT * FROM unnest(%b::text[], %b::text[], "
    "%b::integer[], %b::float8[], %b::bigint[], %b::bytea[], %b::bytea[]) "
    "ON CONFLICT (id) DO UPDATE SET queue = EXCLUDED.queue, priority = EXCLUDED.priority, "
    "eta = EXCLUDED.eta, seq = EXCLUDED.seq, header = EXCLUDED.header, body = EXCLUDED.body",
    "remove": "DELETE FROM {s}.messages WHERE id = ANY(%s::text[])",
    "messages": "SELECT id, queue, priority, eta, seq, header, body FROM {s}.messages ORDER BY seq",
    "headers": "SELECT id, queue, priority, eta, seq, header, ''::bytea FROM {s}.messages "
    "ORDER BY seq",
    "payload": "SELECT header, body FROM {s}.messages WHERE id = %s",
    "put_result": "INSERT INTO {s}.results SELECT * FROM unnest(%b::text[], %b::text[], "
    "%b::bytea[], %b::bytea[], %b::float8[]) ON CONFLICT (id) DO UPDATE SET "
    "state = EXCLUDED.state, header = EXCLUDED.header, body = EXCLUDED.body, "
    "expires = EXCLUDED.expires",
    "get_result": "SELECT id, state, header, body FROM {s}.results WHERE id = %s",
    "results_among": "SELECT id FROM {s}.results WHERE id = ANY(%s::text[])",
    "result_ids": "SELECT id FROM {s}.results",
    "forget_result": "DELETE FROM {s}.results WHERE id = ANY(%s::text[])",
    "purge": "DELETE FROM {s}.results WHERE expires IS NOT NULL AND expires < %s",
    "get_meta": "SELECT value FROM {s}.meta WHERE key = %s",
    "set_meta": "INSERT INTO {s}.meta SELECT * FROM unnest(%b::text[], %b::bytea[]) "
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    "delete_meta": "DELETE FROM {s}.meta WHERE key = ANY(%s::text[])",
    "aside_copy": "INSERT INTO {s}.set_aside SELECT id, queue, priority, eta, seq, header, "
    "body, %s, %s FROM {s}.messages WHERE id = %s",
    "aside_rows": "SELECT id, reason FROM {s}.set_aside ORDER BY at",
}
#: The errors that mean "PostgreSQL cannot be used now", not a bug of ours.
_UNAVAILABLE: Final = (psycopg.OperationalError, psycopg.InterfaceError)


class PostgresStore(Store):
    """The store in a PostgreSQL schema, with group commit over one connection."""

    #: The schema's only writer: the filter of known result ids is loaded at start (a shared
    #: store, one writer of several, asks the table instead).
    sole_writer = True

    def __init__(self, url: str | StoreURL, *, sync: str = "normal", migrate: bool = False) -> None:
        if sync not in ("normal", "full"):
            raise ValueError(f"hub_sync must be 'normal' or 'full', not {sync!r}")
        self.url = url if isinstance(url, StoreURL) else parse_store_url(url)
        self.sync = sync
        ident = sql.Identifier(self.url.schema)
        self._sql = {k: sql.SQL(v).format(s=ident).as_string(None) for k, v in _SQL.items()}
        #: The turn's writes, the latest per key (None: a deletion); they answer reads too.
        self._messages: dict[str, StoredMessage | None] = {}
        self._results: dict[str, tuple[StoredResult, float | None] | None] = {}
        self._meta: dict[str, bytes | None] = {}
        self._failed: StoreUnavailable | None = None
        self._retry_at = 0.0
        self._delay = RETRY_MIN
        try:
            conn = self._open()
        except psycopg.Error as exc:
            raise ImproperlyConfigured(
                f"cannot use the PostgreSQL store {self._where()}: {first_line(exc)}"
            ) from None
        try:
            prepare_schema(conn, self.url.schema, migrate=migrate)
        except BaseException:
            conn.close()
            raise
        self._conn: Conn | None = conn
        #: The ids that may have a result row (this hub is the schema's only writer).
        self._known = IdFilter()
        if self.sole_writer:
            with conn.cursor(name="celeriac_result_ids") as cur:
                cur.itersize = RESTORE_CHUNK
                cur.execute(self._sql["result_ids"])
                for (task_id,) in cur:
                    self._known.add(task_id)
        conn.commit()
        self.description = describe(conn, self.url.schema)
        _log.info("hub_store_connected", store="postgresql", **self.description)

    # -- the connection ----------------------------------------------------------------------

    def _where(self) -> str:
        return where(self.url)

    def _open(self) -> Conn:
        return connect(self.url, self.sync)

    def _connection(self) -> Conn:
        """The open connection, or a new one if the backoff allows; else StoreUnavailable."""
        if self._conn is not None:
            return self._conn
        now = time.monotonic()
        if now < self._retry_at:
            raise StoreUnavailable(
                f"PostgreSQL unavailable at {self._where()} (next attempt in "
                f"{self._retry_at - now:.1f} s)"
            )
        try:
            self._conn = self._open()
        except (psycopg.Error, ImproperlyConfigured) as exc:
            self._retry_at = time.monotonic() + self._delay
            self._delay = min(self._delay * 2, RETRY_MAX)
            raise StoreUnavailable(
                f"PostgreSQL unavailable at {self._where()}: {first_line(exc)}"
            ) from None
        self._delay = RETRY_MIN
        _log.info(
            "hub_store_reconnected", store="postgresql", **describe(self._conn, self.url.schema)
        )
        return self._conn

    @contextmanager
    def _guard(self) -> Iterator[Conn]:
        """The connection, with a lost one turned into StoreUnavailable (and dropped)."""
        if self._failed is not None:
            raise self._failed
        conn = self._connection()
        try:
            yield conn
        except _UNAVAILABLE as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: BaseException) -> StoreUnavailable:
        """Drop the connection and the turn's writes; commits fail until :meth:`rollback`."""
        failed = self._failed = StoreUnavailable(
            f"PostgreSQL unavailable at {self._where()}: {first_line(exc)}"
        )
        self._drop_pending()
        if self._conn is not None:
            _log.warning("hub_store_lost", store="postgresql", error=first_line(exc))
            self._conn.close()
            self._conn = None
        self._retry_at = time.monotonic() + self._delay
        return failed

    def _pending(self) -> bool:
        return bool(self._messages or self._results or self._meta)

    def _drop_pending(self) -> None:
        self._messages.clear()
        self._results.clear()
        self._meta.clear()

    def _flush(self, *, commit: bool = False) -> None:
        """Send the pending writes: per table, one upsert of many rows and one delete; with
        ``commit``, the ``COMMIT`` too, in the same pipeline (one round trip in all)."""
        if not self._pending() and not commit:
            return
        with self._guard() as conn, conn.pipeline(), conn.cursor() as cur:
            for key, rows, gone in (
                ("add", [m for m in self._messages.values() if m is not None], "remove"),
                ("put_result", [r for r in self._results.values() if r is not None], None),
            ):
                if rows:
                    cur.execute(self._sql[key], _columns(rows))
                if gone:
                    deleted = [k for k, v in self._messages.items() if v is None]
                    if deleted:
                        cur.execute(self._sql[gone], (deleted,))
            forgotten = [k for k, v in self._results.items() if v is None]
            if forgotten:
                cur.execute(self._sql["forget_result"], (forgotten,))
            kept = {k: v for k, v in self._meta.items() if v is not None}
            if kept:
                cur.execute(self._sql["set_meta"], (list(kept), list(kept.values())))
            dropped = [k for k, v in self._meta.items() if v is None]
            if dropped:
                cur.execute(self._sql["delete_meta"], (dropped,))
            self._flush_more(cur)
            if commit:
                conn.commit()
        self._drop_pending()

    def _flush_more(self, cur: psycopg.Cursor[Any]) -> None:
        """More of the turn's writes, in the same pipeline (the shared store's messages)."""

    def _read(self, key: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row by key, from the database (the caller checked the pending writes)."""
        with self._guard() as conn:
            return conn.execute(self._sql[key], args).fetchone()

    # -- the Store interface ---------------------------------------------------------------

    def add_message(self, msg: StoredMessage) -> None:
        """Insert (or replace) a message row."""
        self._messages[msg.id] = msg

    def remove_message(self, message_id: str) -> None:
        """Delete a message row."""
        self._messages[message_id] = None

    def messages(self, *, bodies: bool = True) -> Iterator[StoredMessage]:
        """All message rows in publish order, fetched in chunks by a server-side cursor."""
        self._flush()
        with self._guard() as conn, conn.cursor(name="celeriac_restore") as cur:
            cur.itersize = RESTORE_CHUNK
            cur.execute(self._sql["messages" if bodies else "headers"])
            for row in cur:
                yield StoredMessage(*row)

    def get_payload(self, message_id: str) -> tuple[bytes, bytes] | None:
        """Read one message's header and body by id."""
        if message_id in self._messages:
            msg = self._messages[message_id]
            return None if msg is None else (msg.header, msg.body)
        row = self._read("payload", (message_id,))
        return (bytes(row[0]), bytes(row[1])) if row else None

    def put_result(self, result: StoredResult, expires: float | None) -> None:
        """Insert or replace a result row."""
        self._results[result.id] = (result, expires)
        self._known.add(result.id)

    def get_result(self, task_id: str) -> StoredResult | None:
        """Look a result up by id."""
        if task_id in self._results:
            entry = self._results[task_id]
            return None if entry is None else entry[0]
        row = self._read("get_result", (task_id,))
        return StoredResult(row[0], row[1], bytes(row[2]), bytes(row[3])) if row else None

    def results_among(self, task_ids: list[str]) -> set[str]:
        """The ids with a result: the pending writes, then one query for those the filter
        of known result ids cannot rule out (usually none: no round trip)."""
        found = {i for i in task_ids if self._results.get(i) is not None}
        known = self._known
        ask = [i for i in task_ids if i not in self._results and known.might_contain(i)]
        if ask:
            with self._guard() as conn:
                rows = conn.execute(self._sql["results_among"], (ask,)).fetchall()
            found.update(str(r[0]) for r in rows)
        return found

    def forget_result(self, task_id: str) -> None:
        """Delete a result row."""
        self._results[task_id] = None

    def purge_results(self, now: float) -> int:
        """Delete expired results (at once: the count is the answer)."""
        self._flush()
        with self._guard() as conn:
            return conn.execute(self._sql["purge"], (now,)).rowcount

    def get_meta(self, key: str) -> bytes | None:
        """Read a metadata value."""
        if key in self._meta:
            return self._meta[key]  # None: deleted this turn
        row = self._read("get_meta", (key,))
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        """Write a metadata value."""
        self._meta[key] = value

    def delete_meta(self, key: str) -> None:
        """Drop a metadata value (a no-op when there is none)."""
        self._meta[key] = None

    def set_aside(self, msg: StoredMessage, reason: str, now: float) -> None:
        """Copy the row into ``set_aside`` with the reason, and delete it from the queue."""
        self._flush()
        with self._guard() as conn:
            conn.execute(self._sql["aside_copy"], (reason, now, msg.id))
        self.remove_message(msg.id)

    def set_aside_rows(self) -> list[tuple[str, str]]:
        """The ids and reasons of the rows set aside."""
        self._flush()
        with self._guard() as conn:
            rows = conn.execute(self._sql["aside_rows"]).fetchall()
        return [(str(i), str(r)) for i, r in rows]

    def commit(self) -> None:
        """Send the pending writes and commit. On failure the turn is rolled back here and
        :class:`~.store.StoreUnavailable` raised, for the hub to refuse its publishes."""
        if self._failed is None and not self._pending():
            conn = self._conn
            if conn is None or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                return
        try:
            self._flush(commit=True)
        except StoreUnavailable:
            self.rollback()
            raise

    def rollback(self) -> None:
        """Drop the pending writes and the open transaction; the next write starts afresh."""
        self._drop_pending()
        self._failed = None
        if self._conn is not None:
            try:
                self._conn.rollback()
            except _UNAVAILABLE as exc:
                self._lost(exc)
                self._failed = None

    def abandon(self) -> None:
        """Close the connection without committing, as a killed hub's is (tests, restarts)."""
        self._drop_pending()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Commit what is pending (if PostgreSQL is there) and close the connection."""
        try:
            self.commit()
        except StoreUnavailable as exc:
            _log.warning("hub_store_close_failed", error=str(exc))
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _columns(rows: list[Any]) -> tuple[list[Any], ...]:
    """Rows (message rows, or ``(result, expires)`` pairs) as one list per column, for
    ``unnest``."""
    if isinstance(rows[0], StoredMessage):
        return tuple(list(c) for c in zip(*(dataclasses.astuple(m) for m in rows), strict=True))
    return (
        [r.id for r, _ in rows],
        [r.state for r, _ in rows],
        [r.header for r, _ in rows],
        [r.body for r, _ in rows],
        [e for _, e in rows],
    )
