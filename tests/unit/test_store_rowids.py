"""The SQLite store's messages keyed by position (``transport/store_rowids.py``): a file of the
older layout (keyed by id) is converted with every row kept, and the in-memory map of ids to
positions follows commits and rollbacks exactly as the table does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from celeriac.transport.store import SQLiteStore, StoredMessage

_OLD_LAYOUT = """
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    eta REAL,
    seq INTEGER NOT NULL,
    header BLOB NOT NULL,
    body BLOB NOT NULL
);
"""


def _msg(i: int, queue: str = "q") -> StoredMessage:
    return StoredMessage(f"m{i}", queue, 0, None, i, b"\x80", b"body-%d" % i)


def test_a_file_keyed_by_id_is_converted_with_its_rows(tmp_path: Path) -> None:
    """Rows written by an older hub (a damaged one too) are all there after the conversion,
    readable, removable and replaceable by id; new rows go after them."""
    path = tmp_path / "hub.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_OLD_LAYOUT)
    db.executemany(
        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(f"m{i}", "q", 0, None, i, b"\x80", b"body-%d" % i) for i in range(3)]
        + [("bad", "q", 0, "soon", 3, b"\x80", b"")],
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert [m.id for m in store.messages()] == ["m0", "m1", "m2", "bad"]
    assert store.get_payload("m1") == (b"\x80", b"body-1")
    store.remove_message("m0")
    store.add_message(_msg(2, queue="other"))  # a requeue: the row is replaced, not doubled
    store.add_message(_msg(4))
    store.commit()
    store.close()
    again = SQLiteStore(path)
    assert [(m.id, m.queue) for m in again.messages()] == [
        ("m1", "q"),
        ("m2", "other"),
        ("bad", "q"),
        ("m4", "q"),
    ]
    again.close()
    third = SQLiteStore(path)  # its first act a removal: the positions are read for it
    third.remove_message("m2")
    third.commit()
    assert [m.id for m in third.messages()] == ["m1", "bad", "m4"]
    third.close()


def test_a_rollback_puts_the_positions_back(tmp_path: Path) -> None:
    """After a rollback, a message added in it is unknown and one removed in it is still
    there to remove; a refused write (the whole turn rolled back) does the same."""
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    for i in range(3):
        store.add_message(_msg(i))
    store.commit()
    store.add_message(_msg(9))
    store.remove_message("m0")
    store.add_message(_msg(1, queue="other"))
    store.rollback()
    assert store.get_payload("m9") is None
    assert store.get_payload("m0") == (b"\x80", b"body-0")
    store.remove_message("m0")
    store.add_message(_msg(9))
    store.commit()
    assert [(m.id, m.queue) for m in store.messages()] == [("m1", "q"), ("m2", "q"), ("m9", "q")]
    store.remove_message("m1")
    store.add_message(StoredMessage("bad", "q", 0, None, 5, None, b""))  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="refused"):
        store.commit()
    store.remove_message("m1")  # still stored: its removal was rolled back with the turn
    store.commit()
    assert [m.id for m in store.messages()] == ["m2", "m9"]
    store.close()
