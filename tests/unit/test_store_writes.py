"""A turn's writes, queued and run together (SQLite: ``transport/writebatch.py``; PostgreSQL
coalesces its own): reads see them at once, order is kept, a commit makes them durable, a
rollback drops them, and a write SQLite refuses refuses the whole turn."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac.transport.store import SQLiteStore, StoredMessage, StoredResult
from celeriac.transport.writebatch import WriteBatch


def _msg(i: int, queue: str = "q") -> StoredMessage:
    return StoredMessage(f"m{i}", queue, 0, None, i, b"\x80", b"body-%d" % i)


def test_reads_see_queued_writes_in_order(open_store: Callable[[], Any]) -> None:
    """Written then deleted in one turn: gone; written twice: the last one; all visible
    before the commit, and after a reopen only what was committed."""
    store = open_store()
    for i in range(5):
        store.add_message(_msg(i))
    store.remove_message("m1")
    store.add_message(_msg(3, queue="other"))
    store.put_result(StoredResult("r1", "SUCCESS", b"\x80", b"1"), None)
    assert [m.id for m in store.messages()] == ["m0", "m2", "m3", "m4"]
    assert store.get_payload("m1") is None
    assert next(m for m in store.messages() if m.id == "m3").queue == "other"
    assert store.results_among(["r1", "m0"]) == {"r1"}
    store.commit()
    store.add_message(_msg(9))  # not committed: a killed hub loses it (never confirmed)
    store.remove_message("m0")
    store.rollback()
    assert [m.id for m in store.messages()] == ["m0", "m2", "m3", "m4"]
    again = open_store()  # as a restarted hub would (the first one not closed: killed)
    assert [m.id for m in again.messages()] == ["m0", "m2", "m3", "m4"]
    assert again.get_result("r1") is not None
    again.close()


def test_add_message_fields_stores_what_add_message_does(open_store: Callable[[], Any]) -> None:
    """The publish path's ``add_message_fields`` keeps the same row as ``add_message`` of the
    same fields (SQLite builds the row directly, the others through ``add_message``), across a
    commit and a reopen."""
    from celeriac.transport.store_memory import MemoryStore  # noqa: PLC0415

    for store in (open_store(), MemoryStore()):
        store.add_message(_msg(1))
        store.add_message_fields("m2", "q", 3, 1.5, 2, b"\x81", b"body-2")
        store.commit()
        rows = list(store.messages())
        assert rows == [_msg(1), StoredMessage("m2", "q", 3, 1.5, 2, b"\x81", b"body-2")]
        assert store.get_payload("m2") == (b"\x81", b"body-2")
    again = open_store()
    assert [m.id for m in again.messages()] == ["m1", "m2"]


def test_results_among_many_ids(open_store: Callable[[], Any]) -> None:
    """A publish batch larger than one ``IN (...)``: every stored id is found, no other."""
    store = open_store()
    for i in range(0, 1200, 3):
        store.put_result(StoredResult(f"t{i}", "SUCCESS", b"\x80", b""), None)
    store.commit()
    asked = [f"t{i}" for i in range(1200)]
    assert store.results_among(asked) == {f"t{i}" for i in range(0, 1200, 3)}
    store.close()


def test_a_refused_write_refuses_the_turn(tmp_path: Path) -> None:
    """A row SQLite refuses (here NOT NULL) fails the commit as disk trouble does
    (OperationalError: the hub refuses the turn's publishes) and rolls the whole turn back,
    the rows queued beside it too: nothing of it is half-written."""
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    store.add_message(_msg(0))
    store.commit()
    store.add_message(_msg(1))
    store.add_message(StoredMessage("bad", "q", 0, None, 2, None, b""))  # type: ignore[arg-type]
    store.add_message(_msg(3))
    with pytest.raises(sqlite3.OperationalError, match="refused"):
        store.commit()
    assert [m.id for m in store.messages()] == ["m0"]
    store.add_message(_msg(4))  # the store works on
    store.commit()
    assert [m.id for m in store.messages()] == ["m0", "m4"]
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3)), max_size=30))
def test_batch_runs_like_one_execute_each(ops: list[tuple[str, int]]) -> None:
    """Any sequence of writes through a WriteBatch leaves the table as executing them one
    by one does (runs of one statement merged, order kept)."""
    sql = {"a": "INSERT OR REPLACE INTO t VALUES (?, ?)", "b": "DELETE FROM t WHERE k = ?"}
    one, many = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    batch = WriteBatch()
    for n, (kind, key) in enumerate(ops):
        row: tuple[Any, ...] = (key, n) if kind == "a" else (key,)
        batch.add(sql[kind], row)
    for db in (one, many):
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")
    for n, (kind, key) in enumerate(ops):
        one.execute(sql[kind], (key, n) if kind == "a" else (key,))
    batch.run(many)
    assert not batch
    assert (
        one.execute("SELECT * FROM t ORDER BY k").fetchall()
        == many.execute("SELECT * FROM t ORDER BY k").fetchall()
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]), st.lists(st.integers(0, 40), min_size=1, max_size=150)
        ),
        max_size=6,
    )
)
def test_multi_row_inserts_and_ranged_deletes_run_like_one_execute_each(
    runs: list[tuple[str, list[int]]],
) -> None:
    """With the hub's cheaper forms (inserts of many rows a step, deletes of consecutive keys
    as one BETWEEN), long runs (past a step's rows), replaced keys, repeated and scattered
    deletes leave the table as executing each write alone."""
    sql = {"a": "INSERT OR REPLACE INTO t VALUES (?, ?)", "b": "DELETE FROM t WHERE k = ?"}
    between = "DELETE FROM t WHERE k BETWEEN ? AND ?"
    one, many = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    batch = WriteBatch(multi_row=[sql["a"]], ranges={sql["b"]: between})
    ops = [(kind, key) for kind, keys in runs for key in keys]
    for db in (one, many):
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")
    for n, (kind, key) in enumerate(ops):
        row: tuple[Any, ...] = (key, n) if kind == "a" else (key,)
        batch.add(sql[kind], row)
        one.execute(sql[kind], row)
    batch.run(many)
    assert not batch
    assert (
        one.execute("SELECT * FROM t ORDER BY k").fetchall()
        == many.execute("SELECT * FROM t ORDER BY k").fetchall()
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["ta", "tb", "ua", "ub"]), st.integers(0, 5)), max_size=40)
)
def test_writes_to_two_tables_interleaved_run_like_one_execute_each(
    ops: list[tuple[str, int]],
) -> None:
    """Two tables' writes queued apart (each table's in order: the other's may run first)
    leave both as executing each write alone, in the order written."""
    sql = {
        "ta": "INSERT OR REPLACE INTO t VALUES (?, ?)",
        "tb": "DELETE FROM t WHERE k = ?",
        "ua": "INSERT OR REPLACE INTO u VALUES (?, ?)",
        "ub": "DELETE FROM u WHERE k = ?",
    }
    one, many = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    batch = WriteBatch(
        multi_row=[sql["ta"]], ranges={sql["tb"]: "DELETE FROM t WHERE k BETWEEN ? AND ?"}
    )
    for db in (one, many):
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")
        db.execute("CREATE TABLE u (k INTEGER PRIMARY KEY, v INTEGER)")
    for n, (kind, key) in enumerate(ops):
        row: tuple[Any, ...] = (key, n) if kind.endswith("a") else (key,)
        batch.add(sql[kind], row)
        one.execute(sql[kind], row)
    batch.run(many)
    assert not batch
    for table in ("t", "u"):
        query = f"SELECT * FROM {table} ORDER BY k"
        assert one.execute(query).fetchall() == many.execute(query).fetchall()


def test_a_turn_of_outcomes_runs_one_statement_per_table() -> None:
    """A message's delete then its result's insert, per task: queued per table, they run as
    one ranged delete and one many-row insert, not one execute per row."""
    batch = WriteBatch(
        ranges={"DELETE FROM t WHERE k = ?": "DELETE FROM t WHERE k BETWEEN ? AND ?"}
    )
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE u (k INTEGER PRIMARY KEY)")
    db.executemany("INSERT INTO t VALUES (?)", [(k,) for k in range(10)])
    for k in range(10):
        batch.add("DELETE FROM t WHERE k = ?", (k,))
        batch.add("INSERT INTO u VALUES (?)", (k,))
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    batch.run(db)
    assert statements == ["DELETE FROM t WHERE k BETWEEN 0 AND 9"] + [
        f"INSERT INTO u VALUES ({k})" for k in range(10)
    ]
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_statement_that_is_not_a_write_to_one_table_is_refused() -> None:
    """Its order against the others could not be kept: refused, not guessed."""
    with pytest.raises(ValueError, match="not a write"):
        WriteBatch().add("SELECT 1", ())


def test_write_ahead_runs_the_writes_without_committing(tmp_path: Path) -> None:
    """``write_ahead`` (the hub loop's, before it waits) hands the queued writes to SQLite
    inside the open transaction: another connection sees nothing until the commit, and a
    write refused there rolls the turn back and raises, as a commit would."""
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    store.add_message(_msg(0))
    store.write_ahead()
    other = SQLiteStore(tmp_path / "hub.sqlite3")
    assert list(other.messages()) == []
    store.commit()
    assert [m.id for m in other.messages()] == ["m0"]
    store.add_message(StoredMessage("bad", "q", 0, None, 2, None, b""))  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="refused"):
        store.write_ahead()
    store.commit()
    assert [m.id for m in store.messages()] == ["m0"]
    other.close()
    store.close()
