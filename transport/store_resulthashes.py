"""The ``results`` table's index by id hash, written a few thousand entries at a time, sorted.

Why
---
Results are found by the CRC-32 of the id (:mod:`.store_results`). An index on that hash, as
SQLite keeps one, takes each result's entry on a random leaf: a commit of a hundred results
dirtied a leaf per result once the table held more than a few thousand, and wrote each to the
WAL (and the checkpoint wrote it again). ``hub_micro.py`` with results, 100 a turn: 2,416 bytes
written a task at 20,000 results kept, 1,018 without that index; 1.1 -> 2.0 writes a task from
20,000 to 100,000 kept (issue 18). Written in sorted batches of :data:`HASH_BATCH`, a leaf
takes many entries each time it is written.

How it works
------------
The hashes live in ``result_hashes`` (``(h, pos)``, no rowid), the index of every row up to
``hashed`` (kept in ``meta`` under :data:`HASHED_KEY`); the rows after it, the newest, are
found by id from memory (:class:`PendingResults`: id -> position, read from the table when the
store opens). A commit that finds :data:`HASH_BATCH` rows pending first adds their hashes in one
``INSERT ... SELECT ... ORDER BY h`` and moves ``hashed`` up, in the same transaction: the
index and its mark are never out of step on disk. A trigger drops a row's hash with the row
(expired, forgotten, replaced). The map may name a row since deleted: a read by its position
then finds nothing, and the index is asked as for any other id.

:func:`migrate_hashes` builds ``result_hashes`` from the rows of a file whose results had a
SQLite index on ``h`` (the layout before this one), and again if an older hub opened the file
since (it makes that index anew: its rows are then not all in ``result_hashes``).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from .store_rowids import converting, undo

__all__ = ["HASHED_KEY", "HASH_BATCH", "PendingResults", "migrate_hashes"]

#: Pending rows that make a commit write their hashes: a batch's leaves are written once for
#: all of its entries (a ~5 ms statement every 4,096 results).
HASH_BATCH: Final = 4096
#: The ``meta`` key of the last position whose hash is in ``result_hashes``.
HASHED_KEY: Final = "celeriac.results.hashed"

_HASH_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS result_hashes "
    "(h INTEGER NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (h, pos)) WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS results_unhash AFTER DELETE ON results BEGIN "
    "DELETE FROM result_hashes WHERE h = old.h AND pos = old.pos; END",
)
#: The rows pending up to a position, their hashes added in index order.
HASH_PENDING: Final = (
    "INSERT OR IGNORE INTO result_hashes (h, pos) "
    "SELECT h, pos FROM results WHERE pos > ? AND pos <= ? ORDER BY h, pos"
)
SET_HASHED: Final = "INSERT OR REPLACE INTO meta VALUES ('celeriac.results.hashed', ?)"


def _exists(db: sqlite3.Connection, kind: str, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (kind, name))
    return row.fetchone() is not None


def migrate_hashes(db: sqlite3.Connection) -> None:
    """Give the file its ``result_hashes`` (every row's hash, ``hashed`` at the last row) if it
    has none, or if an older hub made its index on ``h`` again; after ``results`` and ``meta``
    exist."""
    if _exists(db, "table", "result_hashes") and not _exists(db, "index", "results_h"):
        return
    with converting(db):
        for statement in _HASH_TABLE:
            db.execute(statement)
        db.execute("DELETE FROM result_hashes")
        db.execute("INSERT INTO result_hashes (h, pos) SELECT h, pos FROM results ORDER BY h, pos")
        db.execute("DROP INDEX IF EXISTS results_h")
        (top,) = db.execute("SELECT coalesce(max(pos), 0) FROM results").fetchone()
        db.execute(SET_HASHED, (str(top).encode(),))


class PendingResults:
    """The rows after ``hashed``: each id's position, the next position to hand out, and an
    undo log back to the last commit (a rollback puts them back as the database is put back).
    """

    __slots__ = ("_flushing", "_next_done", "_undo", "hashed", "next_pos", "positions")

    def __init__(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (HASHED_KEY,)).fetchone()
        #: Every row up to this position has its hash in ``result_hashes``.
        self.hashed: int = int(bytes(row[0])) if row else 0
        rows = db.execute("SELECT pos, id FROM results WHERE pos > ? ORDER BY pos", (self.hashed,))
        #: Id -> position of the rows after ``hashed`` (a deleted row's may stay: harmless).
        self.positions: dict[str, int] = {mid: pos for pos, mid in rows}
        (top,) = db.execute("SELECT coalesce(max(pos), 0) FROM results").fetchone()
        #: Where the next row goes: past every row and every hashed position (a position at
        #: or below ``hashed`` would never be found).
        self.next_pos: int = max(int(top), self.hashed) + 1
        self._next_done = self.next_pos
        self._undo: list[tuple[str, int | None]] = []
        self._flushing: int | None = None

    def place(self, mid: str) -> int:
        """A new row's position for ``mid``, remembered as its row (the newest wins)."""
        pos = self.next_pos
        self.next_pos = pos + 1
        positions = self.positions
        self._undo.append((mid, positions.get(mid)))
        positions[mid] = pos
        return pos

    def flush(self, db: sqlite3.Connection) -> None:
        """Inside the open transaction: add the pending rows' hashes, if there are enough to
        be worth a batch (:data:`HASH_BATCH`); the map empties when that commits."""
        if len(self.positions) < HASH_BATCH:
            return
        top = self.next_pos - 1
        db.execute(HASH_PENDING, (self.hashed, top))
        db.execute(SET_HASHED, (str(top).encode(),))
        self._flushing = top

    def committed(self) -> None:
        """The changes so far are durable."""
        if self._flushing is not None:
            self.hashed, self._flushing = self._flushing, None
            self.positions = {}
        self._undo.clear()
        self._next_done = self.next_pos

    def rolled_back(self) -> None:
        """Undo the changes since the last commit, newest first."""
        undo(self.positions, self._undo)
        self._undo.clear()
        self.next_pos = self._next_done
        self._flushing = None
