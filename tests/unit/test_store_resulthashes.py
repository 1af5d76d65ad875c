"""The results' index by id hash written in sorted batches (``transport/store_resulthashes.py``):
the newest results are found from memory until a commit writes their hashes together; every
result is found, replaced, forgotten and expired alike on either side of that mark, after a
restart and after a kill; a file of the previous layout (SQLite's index on ``h``) is converted,
and again after an older hub opened it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from celeriac.transport import store_resulthashes
from celeriac.transport.store import SQLiteStore, StoredResult
from celeriac.transport.store_results import id_hash

BATCH = 4


@pytest.fixture(autouse=True)
def _small_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_resulthashes, "HASH_BATCH", BATCH)


def _result(mid: str, state: str = "SUCCESS", body: bytes = b"1") -> StoredResult:
    return StoredResult(mid, state, b"\x80", body)


def _count(path: Path, sql: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def _hashes(path: Path) -> int:
    return _count(path, "SELECT count(*) FROM result_hashes")


def test_hashes_are_written_a_batch_at_a_time_and_every_result_is_found(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path)
    for i in range(BATCH - 1):
        store.put_result(_result(f"r{i}"), None)
        store.commit()
    assert _hashes(path) == 0  # pending: found from memory
    assert store.get_result("r0") == _result("r0")
    store.put_result(_result(f"r{BATCH - 1}"), None)
    store.commit()
    assert _hashes(path) == BATCH  # one statement, sorted
    store.put_result(_result("late"), None)
    store.commit()
    ids = [f"r{i}" for i in range(BATCH)] + ["late", "none"]
    assert store.results_among(ids) == set(ids) - {"none"}
    assert all(store.get_result(mid) == _result(mid) for mid in ids[:-1])
    assert store.get_result("none") is None
    store.close()
    again = SQLiteStore(path)  # "late" is pending again, read from the table
    assert again.results_among(ids) == set(ids) - {"none"}
    assert again.get_result("late") == _result("late")
    assert again.get_result("r1") == _result("r1")
    again.close()


def test_replaced_forgotten_and_expired_on_both_sides_of_the_mark(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path)
    for i in range(BATCH):
        store.put_result(_result(f"h{i}"), 5.0)
    store.commit()
    store.put_result(_result("p0"), 5.0)
    store.put_result(_result("p1"), None)
    store.commit()
    assert _hashes(path) == BATCH
    store.put_result(_result("h0", "FAILURE"), None)  # a hashed one replaced
    store.put_result(_result("p1", "FAILURE"), None)  # a pending one replaced
    store.forget_result("h1")
    store.forget_result("p0")
    store.commit()
    assert store.get_result("h0") == _result("h0", "FAILURE")
    assert store.get_result("p1") == _result("p1", "FAILURE")
    assert store.get_result("h1") is None
    assert store.get_result("p0") is None
    assert store.purge_results(10.0) == 2  # h2, h3
    store.commit()
    assert store.results_among(["h0", "h1", "h2", "h3", "p0", "p1"]) == {"h0", "p1"}
    assert _hashes(path) == 0  # each deleted row's hash went with it (h0's old row's too)
    store.close()
    rows = _count(path, "SELECT count(*) FROM results")
    assert rows == 2


def test_a_killed_hub_leaves_every_committed_result_findable(tmp_path: Path) -> None:
    """The pending rows are read from the table by the next store; a turn not committed is
    not there, and its positions are handed out again."""
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path)
    for i in range(BATCH + 2):
        store.put_result(_result(f"k{i}"), None)
        store.commit()
    store.put_result(_result("uncommitted"), None)
    store._upkeep.stop()
    store._db.close()  # as a kill: the open transaction is lost
    again = SQLiteStore(path)
    assert again.get_result("uncommitted") is None
    assert all(again.get_result(f"k{i}") == _result(f"k{i}") for i in range(BATCH + 2))
    again.put_result(_result("next"), None)
    again.close()
    third = SQLiteStore(path)
    assert third.get_result("next") == _result("next")
    third.close()


def test_a_rolled_back_turn_puts_the_pending_map_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    store.put_result(_result("a"), None)
    store.commit()
    store.put_result(_result("a", "FAILURE"), None)
    store.put_result(_result("b"), None)
    store.rollback()
    assert store.get_result("a") == _result("a")
    assert store.get_result("b") is None
    store.put_result(_result("b", "FAILURE"), None)
    store.commit()
    assert store.get_result("b") == _result("b", "FAILURE")
    store.close()


def _previous_layout(path: Path) -> None:
    """What an older hub makes: results indexed by SQLite on ``h``."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER results_unhash")
    db.execute("DROP TABLE result_hashes")
    db.execute("CREATE INDEX results_h ON results(h)")
    db.commit()
    db.close()


def test_a_file_of_the_previous_layout_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path)
    store.put_result(_result("old"), None)
    store.close()
    _previous_layout(path)
    again = SQLiteStore(path)
    assert again.get_result("old") == _result("old")
    assert _hashes(path) == 1
    again.close()
    indexes = _count(path, "SELECT count(*) FROM sqlite_master WHERE name = 'results_h'")
    assert indexes == 0


def test_a_file_an_older_hub_wrote_to_is_converted_again(tmp_path: Path) -> None:
    """An older hub makes its index on ``h`` again and adds rows ``result_hashes`` lacks."""
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path)
    for i in range(BATCH):
        store.put_result(_result(f"n{i}"), None)
    store.close()
    db = sqlite3.connect(path)
    db.execute("CREATE INDEX results_h ON results(h)")
    db.execute("DELETE FROM results WHERE id = ?", (f"n{BATCH - 1}",))
    db.execute(  # at the position just freed: at or below the mark, so not pending
        "INSERT INTO results (h, id, state, header, body) VALUES (?, 'older', 'SUCCESS', "
        "x'80', x'31')",
        (id_hash("older"),),
    )
    db.commit()
    db.close()
    again = SQLiteStore(path)
    assert again.get_result("older") == _result("older")
    assert again.get_result("n0") == _result("n0")
    assert again.get_result(f"n{BATCH - 1}") is None
    again.close()
