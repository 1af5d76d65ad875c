"""The SQLite store's ``results`` rows: appended by position, found by a short hash of the id.

Why
---
Task ids are clients' uuid4s. With ``id TEXT PRIMARY KEY`` each result's insert lands on a
random leaf of an index of 37-byte keys, and a commit of a few hundred results dirties (and
writes to the WAL) about a page per result: 5.6 µs a row into an empty table and 10.8 with
200,000 results kept, against 2.5 with no index on the id at all (100 rows a commit, issue 18).
Results are looked up by id (``WAIT``, ``STAT``, a publish's duplicate check), so some index
on it is needed; here the table is keyed by ``pos INTEGER PRIMARY KEY`` (rows appended in the
order written, like the ``messages`` table of :mod:`.store_rowids`) and found by ``h``, the
CRC-32 of the id: an index entry of a few bytes instead of 37, so a commit's random writes
fall on a third as many pages (4.2 and 7.8 µs a row in the same measure); those entries are
written a few thousand at a time, sorted, and the newest rows found from memory
(:mod:`.store_resulthashes`). A lookup reads the rows of the id's hash and keeps the one whose
id matches (two ids share a hash about once in four billion pairs: a second row read, never a
wrong answer).

How it works
------------
``INSERT OR REPLACE`` needs a unique key, which the hash is not: a result for an id that may
have one already deletes its row first. Which ids may have one the store knows from its filter
(:mod:`.store_resultids`, read from the table once), so a new id's result (nearly all of them)
is one plain insert (before the filter is read, at the hub's first publish, each result
deletes first: queueing a result never reads, so it never runs the turn's writes early nor
meets a full disk there). :func:`migrate_results` turns a file of the older layout (keyed by id)
into this one in one transaction, every row kept.
"""

from __future__ import annotations

import sqlite3
import zlib
from typing import TYPE_CHECKING, Final

from .store_records import StoredResult
from .store_resulthashes import PendingResults
from .store_resultids import SCAN_LIMIT, ResultIds
from .store_rowids import converting

if TYPE_CHECKING:
    from .writebatch import WriteBatch

__all__ = ["RESULTS_TABLE", "ResultRows", "id_hash", "migrate_results"]

#: The ``results`` table: ``pos`` is the row's place (its rowid), ``h`` the id's hash.
RESULTS_TABLE: Final = """
CREATE TABLE IF NOT EXISTS results (
    pos INTEGER PRIMARY KEY,
    h INTEGER NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    header BLOB NOT NULL,
    body BLOB NOT NULL,
    expires REAL
);
CREATE INDEX IF NOT EXISTS results_expires ON results(expires) WHERE expires IS NOT NULL;
"""

#: Ids per ``IN (...)`` of :meth:`ResultRows.results_among` (SQLite's default cap on
#: parameters was 999 before 3.32).
_IN_CHUNK: Final = 500

_INSERT: Final = "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)"
#: A row by the id's hash (rows up to ``hashed``: :mod:`.store_resulthashes`), and by position.
_DELETE: Final = (
    "DELETE FROM results WHERE pos IN (SELECT pos FROM result_hashes WHERE h = ?) AND id = ?"
)
_DELETE_AT: Final = "DELETE FROM results WHERE pos = ? AND id = ?"
_GET: Final = (
    "SELECT id, state, header, body FROM results "
    "WHERE pos IN (SELECT pos FROM result_hashes WHERE h = ?) AND id = ?"
)
_GET_AT: Final = "SELECT id, state, header, body FROM results WHERE pos = ? AND id = ?"
_PURGE: Final = "DELETE FROM results WHERE expires IS NOT NULL AND expires < ?"


_crc32 = zlib.crc32


def id_hash(mid: str) -> int:
    """The ``h`` of a task id: CRC-32 of its UTF-8 bytes (stable across processes, unlike
    ``hash``; the same as SQL's ``celeriac_id_hash`` of the stored text)."""
    return zlib.crc32(mid.encode("utf-8", "surrogatepass"))


def _sql_id_hash(value: object) -> int:
    """``celeriac_id_hash`` for the conversion: an id as SQLite hands it (text as ``str``;
    a damaged row's other types hashed as their text, never found by a ``str`` id anyway)."""
    if isinstance(value, bytes):
        return zlib.crc32(value)
    return id_hash(str(value))


def migrate_results(db: sqlite3.Connection) -> None:
    """Give ``results`` its ``pos`` key and ``h`` index if the file has the older layout
    (keyed by id), every row kept in the order written; a new file gets the table as it is."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(results)")]
    if not columns or "pos" in columns:
        db.executescript(RESULTS_TABLE)
        return
    db.create_function("celeriac_id_hash", 1, _sql_id_hash, deterministic=True)
    with converting(db):
        db.execute("ALTER TABLE results RENAME TO results_by_id")
        db.execute("DROP INDEX IF EXISTS results_expires")  # its name is the new table's
        for statement in RESULTS_TABLE.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(
            "INSERT INTO results (h, id, state, header, body, expires) "
            "SELECT celeriac_id_hash(id), id, state, header, body, expires "
            "FROM results_by_id ORDER BY rowid"
        )
        db.execute("DROP TABLE results_by_id")


class ResultRows:
    """The results half of :class:`~celeriac.transport.store.SQLiteStore` (a mixin: it uses
    the store's queued writes and its reading connection)."""

    _writes: WriteBatch
    #: The newest rows, not yet in ``result_hashes``: found by id from memory.
    _pending: PendingResults
    #: The ids that may have a result, read at the first need (None: not yet).
    _result_ids: ResultIds | None = None

    def _read(self) -> sqlite3.Connection:
        """The connection for a read, the queued writes run first (the store's)."""
        raise NotImplementedError

    def _tx(self) -> sqlite3.Connection:
        """The connection inside the open transaction (the store's)."""
        raise NotImplementedError

    def put_result(self, result: StoredResult, expires: float | None) -> None:
        """Insert a result row (replacing the id's row, if it may have one)."""
        mid = result.id
        h = _crc32(mid.encode("utf-8", "surrogatepass"))  # id_hash, inlined: once a result
        known = self._result_ids  # not read here if not yet: queueing a write never reads
        if known is None or known.add(mid):  # the id may have a row (rare): it goes first
            self._delete_result(h, mid)
        pos = self._pending.place(mid)
        self._writes.add(_INSERT, (pos, h, mid, result.state, result.header, result.body, expires))

    def _delete_result(self, h: int, mid: str) -> None:
        # An id has one row at most (a new result deletes the old first): a pending one,
        # found by its position, or one whose hash is in result_hashes.
        pos = self._pending.positions.get(mid)
        if pos is None:
            self._writes.add(_DELETE, (h, mid))
        else:
            self._writes.add(_DELETE_AT, (pos, mid))

    def get_result(self, task_id: str) -> StoredResult | None:
        """Look a result up by id."""
        pos = self._pending.positions.get(task_id)  # (one row at most: see _delete_result)
        if pos is None:
            row = self._read().execute(_GET, (id_hash(task_id), task_id)).fetchone()
        else:
            row = self._read().execute(_GET_AT, (pos, task_id)).fetchone()
        return StoredResult(*row) if row else None

    def results_among(self, task_ids: list[str]) -> set[str]:
        """One ``IN`` query per 500 ids (a publish batch's duplicate checks, not one lookup
        per id), for the ids the filter of results cannot rule out (:mod:`.store_resultids`):
        usually none, and then nothing is read."""
        found: set[str] = set()
        task_ids = self._known_results().maybe(task_ids)
        if not task_ids:
            return found
        db = self._read()
        asked = set(task_ids)
        positions = self._pending.positions
        for start in range(0, len(task_ids), _IN_CHUNK):
            chunk = task_ids[start : start + _IN_CHUNK]
            hashes = list({id_hash(mid) for mid in chunk})
            at = [positions[mid] for mid in chunk if mid in positions]
            sql = (
                "SELECT id FROM results WHERE pos IN "  # noqa: S608 - only placeholders
                f"(SELECT pos FROM result_hashes WHERE h IN ({','.join('?' * len(hashes))}))"
            )
            if at:  # (an empty "OR pos IN ()" would make SQLite scan the table)
                sql += f" OR pos IN ({','.join('?' * len(at))})"
            found.update(row[0] for row in db.execute(sql, hashes + at) if row[0] in asked)
        return found

    def _known_results(self) -> ResultIds:
        """The filter of ids with a result, read from the table the first time (left full,
        answering "maybe" for all, if the table may hold more rows than it takes)."""
        known = self._result_ids
        if known is None:
            known = self._result_ids = ResultIds()
            db = self._read()
            low, high = db.execute("SELECT min(pos), max(pos) FROM results").fetchone()
            if high is not None and high - low >= SCAN_LIMIT:  # positions bound the row count
                known.give_up()
            elif high is not None:
                known.fill(row[0] for row in db.execute("SELECT id FROM results"))
        return known

    def forget_result(self, task_id: str) -> None:
        """Delete a result row."""
        self._delete_result(id_hash(task_id), task_id)

    def purge_results(self, now: float) -> int:
        """Delete expired results."""
        cur = self._tx().execute(_PURGE, (now,))
        if cur.rowcount and self._result_ids is not None and self._result_ids.full:
            self._result_ids = None  # read again at the next need: it may fit now
        return cur.rowcount
