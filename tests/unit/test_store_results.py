"""The SQLite store's results keyed by position and found by a hash of the id
(``transport/store_results.py``): a file of the older layout (keyed by id) is converted with
every row kept, a second result for an id replaces the first, and two ids of one hash are
told apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from celeriac.transport.store import SQLiteStore, StoredResult
from celeriac.transport.store_results import id_hash

_OLD_LAYOUT = """
CREATE TABLE results (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    header BLOB NOT NULL,
    body BLOB NOT NULL,
    expires REAL
);
CREATE INDEX results_expires ON results(expires) WHERE expires IS NOT NULL;
"""


def _result(mid: str, state: str = "SUCCESS", body: bytes = b"1") -> StoredResult:
    return StoredResult(mid, state, b"\x80", body)


def _rows(path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT id, state FROM results ORDER BY pos"))
    finally:
        db.close()


def test_a_file_keyed_by_id_is_converted_with_its_results(tmp_path: Path) -> None:
    """Results written by an older hub are found by id after the conversion, expire as
    before, and a new result for one of them replaces it."""
    path = tmp_path / "hub.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_OLD_LAYOUT)
    db.executemany(
        "INSERT INTO results VALUES (?, ?, ?, ?, ?)",
        [("old-1", "SUCCESS", b"\x80", b"1", None), ("old-2", "FAILURE", b"\x80", b"2", 5.0)],
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    found = store.get_result("old-1")
    assert found == _result("old-1")
    assert store.results_among(["old-1", "old-2", "new"]) == {"old-1", "old-2"}
    assert store.purge_results(10.0) == 1  # old-2 had expired: the expiry index came along
    store.put_result(_result("old-1", "FAILURE", b"9"), None)
    store.close()
    assert _rows(path) == [("old-1", "FAILURE")]


def test_a_second_result_for_an_id_replaces_the_first(tmp_path: Path) -> None:
    """In one turn, in the next, and after a restart (the filter read from the table)."""
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path)
    store.put_result(_result("a", "STARTED"), None)
    store.put_result(_result("a", "PROGRESS"), None)
    store.commit()
    store.put_result(_result("a", "SUCCESS"), None)
    store.close()
    assert _rows(path) == [("a", "SUCCESS")]
    again = SQLiteStore(path)
    again.put_result(_result("a", "FAILURE"), None)
    again.put_result(_result("b"), None)
    again.close()
    assert _rows(path) == [("a", "FAILURE"), ("b", "SUCCESS")]


def test_two_ids_of_one_hash_are_told_apart(tmp_path: Path) -> None:
    """The ids "plumless" and "buckeroo" share a CRC-32: each is found, replaced and
    forgotten alone."""
    assert id_hash("plumless") == id_hash("buckeroo")
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    store.put_result(_result("plumless", body=b"p"), None)
    assert store.get_result("buckeroo") is None
    assert store.results_among(["buckeroo"]) == set()
    store.put_result(_result("buckeroo", body=b"b"), None)
    store.put_result(_result("plumless", body=b"p2"), None)
    assert store.get_result("plumless") == _result("plumless", body=b"p2")
    assert store.get_result("buckeroo") == _result("buckeroo", body=b"b")
    store.forget_result("plumless")
    assert store.get_result("plumless") is None
    assert store.results_among(["plumless", "buckeroo"]) == {"buckeroo"}
    store.close()


def test_a_rolled_back_result_is_gone_and_a_later_one_is_kept(tmp_path: Path) -> None:
    """A turn refused (disk trouble): its results are gone; the id's next result is stored
    once (the filter still says "maybe": a lookup, never a missed row)."""
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path)
    store.put_result(_result("x"), None)
    store.rollback()
    assert store.get_result("x") is None
    store.put_result(_result("x", "FAILURE"), None)
    store.close()
    assert _rows(path) == [("x", "FAILURE")]


def test_queueing_a_result_reads_nothing(tmp_path: Path) -> None:
    """Before the filter is read (a hub's first publish reads it), a result is queued with
    its delete, running no statement: the turn's writes do not run early (nor meet a full
    disk there, in the middle of a DONE); the result is stored once all the same."""
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path)
    store.put_result(_result("a"), None)
    store.commit()
    store.close()
    again = SQLiteStore(path)
    statements: list[str] = []
    again._db.set_trace_callback(statements.append)
    again.put_result(_result("a", "FAILURE"), None)
    assert statements == []
    again.close()
    assert _rows(path) == [("a", "FAILURE")]
