"""The SQLite store's ``messages`` rows keyed by position, not by the clients' random ids.

Why
---
Task ids are clients' uuid4s. With ``id TEXT PRIMARY KEY`` each insert and each delete lands
on a random leaf of the id index, so a commit of a few hundred writes dirties a page per write
and writes it all to the WAL: with a backlog of 20,000 tasks an insert cost 8.6 µs and a delete
6.6 µs against 4.7 and 2.6 for ids in publish order (``benchmarks/hub_sql.py``), about 8 µs of
the hub's ~50 µs per task. Here the table is keyed by ``pos INTEGER PRIMARY KEY``, a number
the store hands out in publish order (rows are appended, and drained from the front), and the
store keeps which position holds which id in memory (:class:`RowIds`): the hub reads and
deletes its messages by id only, one at a time, so no index on the id is needed.

How it works
------------
:class:`RowIds` maps each stored id to its position; a write changes it at once (so reads see
it, like the writes the store queues) and records the previous value, so a rollback puts the
map back as the database is put back. The map is read from the table when the store opens.
:func:`migrate` turns a file made with the id key (every hub before this one) into the new
layout in one transaction, rows copied as they are (damaged ones too: restore sets them aside).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, Final

__all__ = ["MESSAGES_TABLE", "RowIds", "converting", "migrate", "undo"]

#: The ``messages`` table: ``pos`` is the row's place (its rowid), ``id`` the task's.
MESSAGES_TABLE: Final = """
CREATE TABLE IF NOT EXISTS messages (
    pos INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    eta REAL,
    seq INTEGER NOT NULL,
    header BLOB NOT NULL,
    body BLOB NOT NULL
);
"""
#: The older layout (keyed by id) to this one, after the table is renamed and made anew.
_COPY: Final = (
    "INSERT INTO messages (id, queue, priority, eta, seq, header, body) "
    "SELECT id, queue, priority, eta, seq, header, body FROM messages_by_id ORDER BY rowid"
)


def migrate(db: sqlite3.Connection) -> None:
    """Give ``messages`` its ``pos`` key if the file has the older layout (keyed by id),
    keeping every row and their order; a new file gets the table as it is."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(messages)")]
    if not columns or "pos" in columns:
        db.execute(MESSAGES_TABLE)
        return
    with converting(db):
        db.execute("ALTER TABLE messages RENAME TO messages_by_id")
        db.execute(MESSAGES_TABLE)
        db.execute(_COPY)
        db.execute("DROP TABLE messages_by_id")


@contextlib.contextmanager
def converting(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction around a file's conversion to a new layout: all of it, or none."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class RowIds:
    """Which position holds each stored message id, with an undo log back to the last commit.

    The map is read from the table once: from the hub's own restoring scan when that comes
    first (:meth:`fill`, so a restart reads the rows once, not twice), else at the first write
    or lookup."""

    __slots__ = ("_db", "_next", "_pos", "_undo")

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._pos: dict[Any, int] | None = None  # None: not read yet
        self._next = 1
        #: ``(id, position before)`` of each change since the last commit (None: absent).
        self._undo: list[tuple[Any, int | None]] = []

    @property
    def loaded(self) -> bool:
        """Whether the map has been read from the table."""
        return self._pos is not None

    def fill(self, rows: Iterable[tuple[int, Any]]) -> None:
        """Take the map from ``(position, id)`` of every row, unless it is read already."""
        if self._pos is not None:
            return
        positions: dict[Any, int] = {}
        top = 0
        for pos, mid in rows:
            positions[mid] = pos
            top = max(top, pos)  # past every row's, duplicate ids (a damaged file) included
        self._pos, self._next = positions, top + 1

    def _map(self) -> dict[Any, int]:
        if self._pos is None:
            self.fill(self._db.execute("SELECT pos, id FROM messages"))
        return self._pos  # type: ignore[return-value]  # filled just above

    def place(self, mid: str) -> int:
        """The position of ``mid``: its own if it is stored, else a new one at the end."""
        positions = self._map()  # read first: reading it sets where new rows go
        new = self._next
        pos = positions.setdefault(mid, new)  # one lookup: the map is as large as the backlog
        if pos == new:
            self._next = new + 1
            self._undo.append((mid, None))
        return pos

    def take(self, mid: Any) -> int | None:
        """Forget ``mid``; its position (None: not stored)."""
        pos = self._map().pop(mid, None)
        if pos is not None:
            self._undo.append((mid, pos))
        return pos

    def find(self, mid: Any) -> int | None:
        """The position of ``mid`` (None: not stored)."""
        return self._map().get(mid)

    def committed(self) -> None:
        """The changes so far are durable: nothing to undo."""
        self._undo.clear()
        if self._pos is not None and not self._pos:
            self._pos = {}  # a dict never shrinks: after a drain, its table is given back

    def rolled_back(self) -> None:
        """Undo the changes since the last commit, newest first."""
        if self._pos is not None:
            undo(self._pos, self._undo)
        self._undo.clear()


def undo(positions: dict[Any, int], log: list[tuple[Any, int | None]]) -> None:
    """Put ``positions`` back as they were before the changes of ``log`` (``(id, position
    before)``, None: absent), newest first."""
    for mid, pos in reversed(log):
        if pos is None:
            positions.pop(mid, None)
        else:
            positions[mid] = pos
