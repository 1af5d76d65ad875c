"""The hub's durable store: queued messages, results and metadata in one SQLite file (WAL).

Writes go into one open transaction; the hub's loop calls :meth:`Store.commit` once per turn
(group commit), and only after that does it confirm publishes. So a confirmed publish is on
disk, and a thousand publishes cost one commit instead of a thousand.

``sync="normal"`` (the default) survives the hub process being killed at any point; ``"full"``
also survives a power cut, at the price of an fsync per commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from .sqlite_upkeep import Upkeep, prepare
from .store_records import StoredMessage, StoredResult
from .store_resulthashes import PendingResults, migrate_hashes
from .store_results import ResultRows, migrate_results
from .store_rowids import RowIds, migrate
from .writebatch import WriteBatch

__all__ = [
    "SQLiteStore",
    "Store",
    "StoreUnavailable",
    "StoredMessage",
    "StoredResult",
]

#: A WAL file larger than this is truncated at once, even while the hub writes (and
#: ``journal_size_limit`` after each checkpoint); an idle hub's WAL is truncated to zero by
#: :mod:`.sqlite_upkeep`, which also gives the pages of drained rows back to the disk.
WAL_SIZE_LIMIT: Final = 64 * 1024 * 1024

#: The other tables (``messages``: :mod:`.store_rowids`; ``results``: :mod:`.store_results`).
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS set_aside (
    id, queue, priority, eta, seq, header, body,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
"""

_SELECT_MESSAGES: Final = (
    "SELECT pos, id, queue, priority, eta, seq, header, body FROM messages ORDER BY seq"
)
#: Bodies stay on disk: a blob reads as x'' (anything else as it is, to be found damaged).
_SELECT_HEADERS: Final = (
    "SELECT pos, id, queue, priority, eta, seq, header, "
    "CASE typeof(body) WHEN 'blob' THEN x'' ELSE body END FROM messages ORDER BY seq"
)

#: The writes queued per task (:mod:`.writebatch` runs a turn's of each together).
_INSERT_MESSAGE: Final = "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_DELETE_MESSAGE: Final = "DELETE FROM messages WHERE pos = ?"
_DELETE_SPAN: Final = "DELETE FROM messages WHERE pos BETWEEN ? AND ?"


class StoreUnavailable(Exception):
    """The store cannot be reached or cannot write (a database server gone away, a lost
    connection): the hub treats it like a full disk (publishes refused until a write works)."""


class Store:
    """What the hub state needs from storage. Writes are visible at once, durable at commit."""

    def add_message(self, msg: StoredMessage) -> None:
        """Keep a message until it is removed."""
        raise NotImplementedError

    def add_message_fields(
        self,
        message_id: str,
        queue: str,
        priority: int,
        eta: float | None,
        seq: int,
        header: bytes,
        body: bytes,
    ) -> None:
        """:meth:`add_message` of the message these fields make (the hub's publish path: a
        store may keep them without building the :class:`StoredMessage`)."""
        self.add_message(StoredMessage(message_id, queue, priority, eta, seq, header, body))

    def remove_message(self, message_id: str) -> None:
        """Forget a message (acknowledged, expired or dropped)."""
        raise NotImplementedError

    def messages(self, *, bodies: bool = True) -> Iterator[StoredMessage]:
        """Every kept message, oldest first; with ``bodies=False``, each body is read as
        ``b""`` (a body that is not bytes is still returned, to be found damaged)."""
        raise NotImplementedError

    def get_payload(self, message_id: str) -> tuple[bytes, bytes] | None:
        """The header and body of a kept message, as stored (None: no such message, or a
        column that is not bytes)."""
        raise NotImplementedError

    def put_result(self, result: StoredResult, expires: float | None) -> None:
        """Keep a result until ``expires`` (epoch seconds; None: forever)."""
        raise NotImplementedError

    def get_result(self, task_id: str) -> StoredResult | None:
        """The stored result for an id, if any."""
        raise NotImplementedError

    def forget_result(self, task_id: str) -> None:
        """Drop a stored result."""
        raise NotImplementedError

    def results_among(self, task_ids: list[str]) -> set[str]:
        """The ids of ``task_ids`` that have a stored result (one read for a publish batch:
        a database server answers it in one round trip)."""
        return {i for i in task_ids if self.get_result(i) is not None}

    def purge_results(self, now: float) -> int:
        """Drop results whose expiry has passed; return how many."""
        raise NotImplementedError

    def get_meta(self, key: str) -> bytes | None:
        """A metadata value."""
        raise NotImplementedError

    def set_meta(self, key: str, value: bytes) -> None:
        """Set a metadata value."""
        raise NotImplementedError

    def delete_meta(self, key: str) -> None:
        """Drop a metadata value (a no-op when there is none)."""
        raise NotImplementedError

    def set_aside(self, msg: StoredMessage, reason: str, now: float) -> None:
        """Move a message row that cannot be restored (damaged, or from another version) out
        of the queue into the ``set_aside`` table, with the reason: kept for an operator to
        inspect, never delivered."""
        raise NotImplementedError

    def set_aside_rows(self) -> list[tuple[str, str]]:
        """``(id, reason)`` of every row set aside."""
        raise NotImplementedError

    def write_ahead(self) -> None:
        """Hand the writes queued so far to the database, uncommitted (the loop calls it
        before it waits, so a later commit has less to do); a store writing at once does
        nothing here."""

    def commit(self) -> None:
        """Make every write so far durable."""

    def rollback(self) -> None:
        """Drop the open transaction (after a failed commit: the store is consistent again)."""

    def close(self) -> None:
        """Commit and release the file."""


class SQLiteStore(ResultRows, Store):
    """The store in one SQLite database file, in WAL mode, with group commit (its results:
    :class:`~.store_results.ResultRows`)."""

    def __init__(
        self, path: Path | str, sync: str = "normal", wal_size_limit: int = WAL_SIZE_LIMIT
    ) -> None:
        if sync not in ("normal", "full"):
            raise ValueError(f"hub_sync must be 'normal' or 'full', not {sync!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open and commit transactions ourselves.
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        prepare(self._db, self.path)  # before WAL mode: that writes the file's header
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        # Checkpoints and vacuum run in a thread of their own (sqlite_upkeep), never here.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.execute(f"PRAGMA journal_size_limit={int(wal_size_limit)}")
        migrate(self._db)
        migrate_results(self._db)
        self._db.executescript(_SCHEMA)
        migrate_hashes(self._db)  # after meta exists: it keeps where the hashes are up to
        self._pending = PendingResults(self._db)
        #: Where each message id's row is (the table is keyed by position: .store_rowids).
        self._rows = RowIds(self._db)
        self._in_tx = False
        #: Writes queued until the next read or commit (see :mod:`.writebatch`).
        self._writes = WriteBatch(
            multi_row=(_INSERT_MESSAGE,), ranges={_DELETE_MESSAGE: _DELETE_SPAN}
        )
        self._upkeep = Upkeep(self.path, wal_size_limit)
        self._upkeep.start()

    def _tx(self) -> sqlite3.Connection:
        """The connection inside the open transaction, the queued writes run first."""
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True
        if self._writes:
            try:
                self._writes.run(self._db)
            except sqlite3.OperationalError:  # full, read-only, I/O: disk trouble
                self.rollback()
                raise
            except sqlite3.Error as exc:  # a row SQLite refuses: the whole turn is refused
                self.rollback()
                raise sqlite3.OperationalError(f"a write was refused: {exc}") from exc
        return self._db

    def _read(self) -> sqlite3.Connection:
        """The connection for a read: the queued writes run first (writes are visible at
        once, as the :class:`Store` contract says)."""
        return self._tx() if self._writes else self._db

    def add_message(self, msg: StoredMessage) -> None:
        """Insert (or replace, for a requeue with new fields) a message row."""
        self.add_message_fields(
            msg.id, msg.queue, msg.priority, msg.eta, msg.seq, msg.header, msg.body
        )

    def add_message_fields(
        self,
        message_id: str,
        queue: str,
        priority: int,
        eta: float | None,
        seq: int,
        header: bytes,
        body: bytes,
    ) -> None:
        """:meth:`add_message` of these fields, the row built from them directly."""
        self._writes.add(
            _INSERT_MESSAGE,
            (self._rows.place(message_id), message_id, queue, priority, eta, seq, header, body),
        )

    def remove_message(self, message_id: str) -> None:
        """Delete a message row."""
        pos = self._rows.take(message_id)
        if pos is not None:
            self._writes.add(_DELETE_MESSAGE, (pos,))

    def messages(self, *, bodies: bool = True) -> Iterator[StoredMessage]:
        """All message rows in publish order (bodies left on disk with ``bodies=False``)."""
        rows = self._read().execute(_SELECT_MESSAGES if bodies else _SELECT_HEADERS)
        seen: list[tuple[int, str]] | None = None if self._rows.loaded else []
        for pos, *row in rows:
            if seen is not None:
                seen.append((pos, row[0]))
            yield StoredMessage(*row)
        if seen is not None:  # a full scan: where each id is, without reading them again
            self._rows.fill(seen)

    def get_payload(self, message_id: str) -> tuple[bytes, bytes] | None:
        """Read one message's header and body by id."""
        pos = self._rows.find(message_id)
        if pos is None:
            return None
        row = (
            self._read()
            .execute("SELECT header, body FROM messages WHERE pos = ?", (pos,))
            .fetchone()
        )
        if row and isinstance(row[0], bytes) and isinstance(row[1], bytes):
            return row[0], row[1]
        return None

    def get_meta(self, key: str) -> bytes | None:
        """Read a metadata value."""
        row = self._read().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        """Write a metadata value."""
        self._writes.add("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        """Delete a metadata value."""
        self._writes.add("DELETE FROM meta WHERE key = ?", (key,))

    def set_aside(self, msg: StoredMessage, reason: str, now: float) -> None:
        """Copy the row as it is (columns untyped) into ``set_aside`` and delete it."""
        pos = self._rows.take(msg.id)
        db = self._tx()
        db.execute(
            "INSERT INTO set_aside SELECT id, queue, priority, eta, seq, header, body, ?, ? "
            "FROM messages WHERE pos IS ?",
            (reason, now, pos),
        )
        db.execute("DELETE FROM messages WHERE pos IS ?", (pos,))

    def set_aside_rows(self) -> list[tuple[str, str]]:
        """The ids (as text) and reasons of the rows set aside."""
        rows = self._read().execute("SELECT CAST(id AS TEXT), reason FROM set_aside ORDER BY at")
        return [(str(i), str(r)) for i, r in rows]

    def write_ahead(self) -> None:
        """Run the queued writes inside the open transaction (a refused one rolls it back and
        raises, as at a commit)."""
        if self._writes:
            self._tx()

    def commit(self) -> None:
        """End the open transaction, if any. If the commit fails (disk full...), SQLite may
        have rolled it back already: the transaction is rolled back here too (so the next
        write opens a new one) and the error is raised for the caller to act on."""
        if self._writes:
            self._tx()  # runs them (a refused write rolls back and raises here)
        if self._in_tx:
            try:
                self._pending.flush(self._db)  # a batch of results' hashes, when due
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self.rollback()
                raise
            self._in_tx = False
        self._rows.committed()
        self._pending.committed()

    def rollback(self) -> None:
        """Roll the open transaction back, if SQLite still has one."""
        self._in_tx = False
        self._writes.clear()
        self._rows.rolled_back()
        self._pending.rolled_back()
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        """Commit, stop the upkeep thread, and close the database."""
        self.commit()
        self._upkeep.stop()
        self._db.close()
