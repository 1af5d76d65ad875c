"""The WAL file shrinks back after a burst is drained (checkpoints that truncate)."""

from __future__ import annotations

import time
from pathlib import Path

from celeriac.transport.store import SQLiteStore, StoredMessage

LIMIT = 256 * 1024


def test_wal_returns_below_its_limit_after_a_drain(tmp_path: Path) -> None:
    """8 MB written then deleted: the -wal file goes back under wal_size_limit."""
    store = SQLiteStore(tmp_path / "hub.sqlite3", wal_size_limit=LIMIT)
    wal = tmp_path / "hub.sqlite3-wal"
    try:
        body = b"x" * 8192
        for i in range(1000):
            store.add_message(StoredMessage(f"m{i}", "q", 0, None, i, b"\x80", body))
        store.commit()
        assert wal.stat().st_size > 4 * LIMIT
        for i in range(1000):
            store.remove_message(f"m{i}")
        store.commit()
        deadline = time.monotonic() + 15.0
        while wal.stat().st_size > LIMIT:
            assert time.monotonic() < deadline, f"WAL still {wal.stat().st_size} bytes"
            store._closing.wait(0.05)  # the checkpointer runs every 0.5 s
        assert list(store.messages()) == []
    finally:
        store.close()
