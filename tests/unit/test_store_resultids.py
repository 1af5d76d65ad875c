"""The SQLite store's filter of ids with a result (``transport/store_resultids.py``): the
duplicate check reads nothing for a new id, and never misses a stored result, after a
restart, a purge or a table too large to read."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac.transport import store_resultids
from celeriac.transport.store import SQLiteStore, StoredResult
from celeriac.transport.store_resultids import ResultIds


def _result(mid: str) -> StoredResult:
    return StoredResult(mid, "SUCCESS", b"\x80", b"1")


def test_filter_never_misses_an_added_id() -> None:
    """An added id is always "maybe"; most others are ruled out."""
    ids = ResultIds()
    added = [f"r{i}" for i in range(1000)]
    for mid in added:
        ids.add(mid)
    assert ids.maybe(added) == added
    others = [f"o{i}" for i in range(1000)]
    assert len(ids.maybe(others)) < 10


def test_an_empty_filter_rules_every_id_out_until_one_is_added() -> None:
    """No result stored yet (tasks that ignore results): nothing is "maybe", no id hashed;
    the first added id is "maybe" at once."""
    ids = ResultIds()
    asked = [f"t{i}" for i in range(100)]
    assert ids.maybe(asked) == []
    ids.add("t7")
    assert "t7" in ids.maybe(asked)


def test_results_found_before_and_after_a_restart(tmp_path: Path) -> None:
    """Results written before the filter is read, after it, and by an earlier process."""
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    store.put_result(_result("before"), None)
    assert store.results_among(["before", "new"]) == {"before"}
    store.put_result(_result("after"), None)  # the filter is read: it takes this one itself
    assert store.results_among(["after", "new"]) == {"after"}
    store.commit()
    again = SQLiteStore(tmp_path / "hub.sqlite3")  # a restarted hub (the first one killed)
    assert again.results_among(["before", "after", "new"]) == {"before", "after"}
    again.close()


def test_a_table_too_large_is_asked_for_every_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More rows than the filter takes: every id is looked up (found, none missed)."""
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    for i in range(20):
        store.put_result(_result(f"r{i}"), 1.0 if i < 15 else None)
    store.commit()
    monkeypatch.setattr(store_resultids, "SCAN_LIMIT", 10)
    again = SQLiteStore(tmp_path / "hub.sqlite3")
    monkeypatch.setattr("celeriac.transport.store_results.SCAN_LIMIT", 10)
    assert again.results_among(["r3", "r19", "new"]) == {"r3", "r19"}
    assert again._known_results().full
    assert again.purge_results(2.0) == 15  # the filter is read again: five rows fit now
    assert again.results_among(["r3", "r19", "new"]) == {"r19"}
    assert not again._known_results().full
    again.close()
    store.close()


def test_add_says_whether_the_id_may_have_had_a_result() -> None:
    """False for a new id (its result is a plain insert), True once added, and True for
    every id once the filter gave up."""
    ids = ResultIds()
    assert ids.add("first") is False
    assert ids.add("first") is True
    ids.give_up()
    assert ids.add("never-seen") is True
