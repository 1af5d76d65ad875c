"""The hub's durable store in PostgreSQL: the :class:`~.store.Store` interface on one connection.

How it works
------------
The same tables as :class:`~.store.SQLiteStore` (``messages``, ``results``, ``meta``,
``set_aside``), in the schema named by the store URL (see :mod:`.pg_schema`), and the same
semantics: writes are visible at once to this store's reads, durable at :meth:`commit`, which
the hub's loop calls once per turn (group commit) before it confirms publishes.

Writes are not sent one by one (a round trip each): they are kept in order in a list, and sent
together when the turn commits, as ``executemany`` batches in pipeline mode (one round trip for
the lot), then ``COMMIT``. A read first sends what is pending, so it sees every earlier write.

One hub per schema: the store holds a session-level advisory lock for as long as its
connection lives (PostgreSQL drops it when the hub dies, even by ``kill -9``); a second hub on
the same schema is refused at start, like a second hub on a locked data directory.

PostgreSQL going away (a restart, a lost connection) is a :class:`~.store.StoreUnavailable`,
never a crash: the write or commit that met it fails (the hub refuses that turn's publishes,
see :mod:`.hub.storage`), the connection is dropped, and a later write reconnects, no sooner
than an exponential backoff allows (:data:`RETRY_MIN` doubling to :data:`RETRY_MAX`). Until
:meth:`rollback` is called after a failure, :meth:`commit` keeps failing: writes lost with
the connection can never be confirmed by a later successful commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg import sql

from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured

from .pg_schema import (
    LOCK_CLASS,
    SCHEMA_VERSION,
    StoreURL,
    describe,
    parse_store_url,
    prepare_schema,
)
from .store import Store, StoredMessage, StoredResult, StoreUnavailable

__all__ = ["RETRY_MAX", "RETRY_MIN", "PostgresStore", "migrate"]

_log = get_logger("celeriac.hub")

#: Seconds before the first reconnection attempt after PostgreSQL went away; doubles per
#: failed attempt up to :data:`RETRY_MAX`.
RETRY_MIN: Final = 0.5
RETRY_MAX: Final = 15.0
#: Seconds libpq waits for a connection (unless the URL says ``connect_timeout``).
CONNECT_TIMEOUT: Final = 5
#: Rows fetched per round trip when the hub restores its queue.
RESTORE_CHUNK: Final = 5000

_SQL: Final = {
    "add": "INSERT INTO {s}.messages VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO "
    "UPDATE SET queue = EXCLUDED.queue, priority = EXCLUDED.priority, eta = EXCLUDED.eta, "
    "seq = EXCLUDED.seq, header = EXCLUDED.header, body = EXCLUDED.body",
    "remove": "DELETE FROM {s}.messages WHERE id = %s",
    "messages": "SELECT id, queue, priority, eta, seq, header, body FROM {s}.messages ORDER BY seq",
    "headers": "SELECT id, queue, priority, eta, seq, header, ''::bytea FROM {s}.messages "
    "ORDER BY seq",
    "payload": "SELECT header, body FROM {s}.messages WHERE id = %s",
    "put_result": "INSERT INTO {s}.results VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO "
    "UPDATE SET state = EXCLUDED.state, header = EXCLUDED.header, body = EXCLUDED.body, "
    "expires = EXCLUDED.expires",
    "get_result": "SELECT id, state, header, body FROM {s}.results WHERE id = %s",
    "forget_result": "DELETE FROM {s}.results WHERE id = %s",
    "purge": "DELETE FROM {s}.results WHERE expires IS NOT NULL AND expires < %s",
    "get_meta": "SELECT value FROM {s}.meta WHERE key = %s",
    "set_meta": "INSERT INTO {s}.meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
    "SET value = EXCLUDED.value",
    "aside_copy": "INSERT INTO {s}.set_aside SELECT id, queue, priority, eta, seq, header, "
    "body, %s, %s FROM {s}.messages WHERE id = %s",
    "aside_rows": "SELECT id, reason FROM {s}.set_aside ORDER BY at",
}
#: The errors that mean "PostgreSQL cannot be used now", not a bug of ours.
_UNAVAILABLE: Final = (psycopg.OperationalError, psycopg.InterfaceError)

Conn = psycopg.Connection[tuple[Any, ...]]


class PostgresStore(Store):
    """The store in a PostgreSQL schema, with group commit over one connection."""

    def __init__(self, url: str | StoreURL, *, migrate: bool = False) -> None:
        self.url = url if isinstance(url, StoreURL) else parse_store_url(url)
        ident = sql.Identifier(self.url.schema)
        self._sql = {k: sql.SQL(v).format(s=ident).as_string(None) for k, v in _SQL.items()}
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._failed: StoreUnavailable | None = None
        self._retry_at = 0.0
        self._delay = RETRY_MIN
        try:
            conn = self._open()
        except psycopg.Error as exc:
            raise ImproperlyConfigured(
                f"cannot use the PostgreSQL store {self._where()}: {_first_line(exc)}"
            ) from None
        try:
            prepare_schema(conn, self.url.schema, migrate=migrate)
        except BaseException:
            conn.close()
            raise
        self._conn: Conn | None = conn
        self.description = describe(conn, self.url.schema)
        _log.info("hub_store_connected", store="postgresql", **self.description)

    # -- the connection ----------------------------------------------------------------------

    def _where(self) -> str:
        return _where(self.url)

    def _open(self) -> Conn:
        """Connect and take the hub's lock on the schema (one hub per schema)."""
        extra: dict[str, Any] = {}
        if "connect_timeout" not in psycopg.conninfo.conninfo_to_dict(self.url.conninfo):
            extra["connect_timeout"] = CONNECT_TIMEOUT
        conn: Conn = psycopg.connect(self.url.conninfo, autocommit=True, **extra)
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, self.url.schema)
            ).fetchone()
            if not row or not row[0]:
                raise ImproperlyConfigured(
                    f"another hub is already using the PostgreSQL store {self._where()} "
                    "(one hub per schema: give this one another ?schema=)"
                )
            conn.autocommit = False
        except BaseException:
            conn.close()
            raise
        return conn

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
                f"PostgreSQL unavailable at {self._where()}: {_first_line(exc)}"
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
            f"PostgreSQL unavailable at {self._where()}: {_first_line(exc)}"
        )
        self._pending.clear()
        if self._conn is not None:
            _log.warning("hub_store_lost", store="postgresql", error=_first_line(exc))
            self._conn.close()
            self._conn = None
        self._retry_at = time.monotonic() + self._delay
        return failed

    def _flush(self) -> None:
        """Send the pending writes, in order: consecutive ones of a kind as one executemany."""
        pending = self._pending
        if not pending:
            return
        with self._guard() as conn, conn.cursor() as cur:
            start = 0
            while start < len(pending):
                statement = pending[start][0]
                end = start + 1
                while end < len(pending) and pending[end][0] == statement:
                    end += 1
                cur.executemany(statement, [args for _, args in pending[start:end]])
                start = end
        pending.clear()

    def _write(self, key: str, args: tuple[Any, ...]) -> None:
        self._pending.append((self._sql[key], args))

    def _read(self, key: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        self._flush()
        with self._guard() as conn:
            return conn.execute(self._sql[key], args).fetchone()

    # -- the Store interface ---------------------------------------------------------------

    def add_message(self, msg: StoredMessage) -> None:
        """Insert (or replace) a message row."""
        self._write(
            "add", (msg.id, msg.queue, msg.priority, msg.eta, msg.seq, msg.header, msg.body)
        )

    def remove_message(self, message_id: str) -> None:
        """Delete a message row."""
        self._write("remove", (message_id,))

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
        row = self._read("payload", (message_id,))
        return (bytes(row[0]), bytes(row[1])) if row else None

    def put_result(self, result: StoredResult, expires: float | None) -> None:
        """Insert or replace a result row."""
        self._write("put_result", (result.id, result.state, result.header, result.body, expires))

    def get_result(self, task_id: str) -> StoredResult | None:
        """Look a result up by id."""
        row = self._read("get_result", (task_id,))
        return StoredResult(row[0], row[1], bytes(row[2]), bytes(row[3])) if row else None

    def forget_result(self, task_id: str) -> None:
        """Delete a result row."""
        self._write("forget_result", (task_id,))

    def purge_results(self, now: float) -> int:
        """Delete expired results (at once: the count is the answer)."""
        self._flush()
        with self._guard() as conn:
            return conn.execute(self._sql["purge"], (now,)).rowcount

    def get_meta(self, key: str) -> bytes | None:
        """Read a metadata value."""
        row = self._read("get_meta", (key,))
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        """Write a metadata value."""
        self._write("set_meta", (key, value))

    def set_aside(self, msg: StoredMessage, reason: str, now: float) -> None:
        """Copy the row into ``set_aside`` with the reason, and delete it from the queue."""
        self._write("aside_copy", (reason, now, msg.id))
        self._write("remove", (msg.id,))

    def set_aside_rows(self) -> list[tuple[str, str]]:
        """The ids and reasons of the rows set aside."""
        self._flush()
        with self._guard() as conn:
            rows = conn.execute(self._sql["aside_rows"]).fetchall()
        return [(str(i), str(r)) for i, r in rows]

    def commit(self) -> None:
        """Send the pending writes and commit. On failure the turn is rolled back here and
        :class:`~.store.StoreUnavailable` raised, for the hub to refuse its publishes."""
        if self._failed is None and not self._pending:
            conn = self._conn
            if conn is None or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                return
        try:
            self._flush()
            with self._guard() as conn:
                conn.commit()
        except StoreUnavailable:
            self.rollback()
            raise

    def rollback(self) -> None:
        """Drop the pending writes and the open transaction; the next write starts afresh."""
        self._pending.clear()
        self._failed = None
        if self._conn is not None:
            try:
                self._conn.rollback()
            except _UNAVAILABLE as exc:
                self._lost(exc)
                self._failed = None

    def abandon(self) -> None:
        """Close the connection without committing, as a killed hub's is (tests, restarts)."""
        self._pending.clear()
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


def migrate(url: str) -> tuple[int, int, str]:
    """Create or upgrade the tables of the store at ``url`` (``celeriac hub --migrate``):
    ``(version before, version now, where)``; idempotent."""
    target = parse_store_url(url)
    where = _where(target)
    try:
        with psycopg.connect(target.conninfo, connect_timeout=CONNECT_TIMEOUT) as conn:
            before = prepare_schema(conn, target.schema, migrate=True)
    except psycopg.Error as exc:
        raise ImproperlyConfigured(
            f"cannot use the PostgreSQL store {where}: {_first_line(exc)}"
        ) from None
    return before, SCHEMA_VERSION, where


def _where(url: StoreURL) -> str:
    """The store's address without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url.conninfo)
    host, port = info.get("host", "localhost"), info.get("port", 5432)
    user = f"{info['user']}@" if info.get("user") else ""
    return f"{user}{host}:{port}/{info.get('dbname', '')} schema {url.schema}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
