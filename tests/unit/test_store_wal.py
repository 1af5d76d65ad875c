"""Disk use returns after a drain: WAL checkpoints that truncate, and a file that shrinks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from celeriac.transport.store import SQLiteStore, StoredMessage

from ..waiting import wait_until

LIMIT = 256 * 1024


def _fill(store: SQLiteStore, n: int, body: bytes) -> None:
    for i in range(n):
        store.add_message(StoredMessage(f"m{i}", "q", 0, None, i, b"\x80", body))
    store.commit()


def _drain(store: SQLiteStore, n: int) -> None:
    for i in range(n):
        store.remove_message(f"m{i}")
    store.commit()


def test_wal_is_truncated_to_nothing_once_the_writer_is_idle(tmp_path: Path) -> None:
    """8 MB written then deleted: the -wal file goes back to zero bytes (TRUNCATE)."""
    store = SQLiteStore(tmp_path / "hub.sqlite3", wal_size_limit=LIMIT)
    wal = tmp_path / "hub.sqlite3-wal"
    try:
        _fill(store, 1000, b"x" * 8192)
        assert wal.stat().st_size > 4 * LIMIT
        _drain(store, 1000)
        wait_until(
            lambda: wal.stat().st_size == 0, 30.0, lambda: f"an empty WAL ({wal.stat().st_size} B)"
        )
        assert list(store.messages()) == []
    finally:
        store.close()


def _disk(tmp_path: Path) -> int:
    return sum(f.stat().st_size for f in tmp_path.glob("hub.sqlite3*"))


def test_the_database_file_shrinks_back_after_a_drain(tmp_path: Path) -> None:
    """20 MB of messages through and drained: the file and its WAL end near an empty store's
    size (incremental auto_vacuum), and the store still works."""
    store = SQLiteStore(tmp_path / "hub.sqlite3", wal_size_limit=LIMIT)
    try:
        store.commit()
        wait_until(
            lambda: _disk(tmp_path) < 1 << 20, 30.0, lambda: f"< 1 MiB ({_disk(tmp_path)} B)"
        )
        start = _disk(tmp_path)
        for _ in range(2):  # twice: the second round reuses what the first gave back
            _fill(store, 2500, b"y" * 8192)
            assert _disk(tmp_path) > 20 * (1 << 20)
            _drain(store, 2500)
        wait_until(
            lambda: _disk(tmp_path) <= start + (1 << 20),
            60.0,
            lambda: f"{_disk(tmp_path)} B on disk, {start} B at the start",
        )
        _fill(store, 3, b"z")
        assert [m.id for m in store.messages()] == ["m0", "m1", "m2"]
    finally:
        store.close()


def test_a_database_made_without_auto_vacuum_is_converted_once(tmp_path: Path) -> None:
    """An older hub's file (auto_vacuum=NONE) is converted at open; its rows are kept."""
    path = tmp_path / "hub.sqlite3"
    old = SQLiteStore(path)
    _fill(old, 3, b"old")
    old.close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA auto_vacuum=NONE")
    raw.execute("VACUUM")
    assert raw.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    raw.close()
    store = SQLiteStore(path)
    try:
        assert [m.id for m in store.messages()] == ["m0", "m1", "m2"]
        assert store._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    finally:
        store.close()
