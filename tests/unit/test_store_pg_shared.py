"""The shared PostgreSQL store's rows, two stores (two hubs) on one fresh schema: idempotent
publish, claims bounded and never shared (SKIP LOCKED), delayed rows, leases of a dead hub
taken back and those of a live one kept, chord counters counted once, locks, beat-lease rows,
and shared hubs never alongside a hub that is not shared. Real PostgreSQL (skipped, saying why,
where none answers)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from celeriac import App
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport.hub.limits import HubLimits
from celeriac.transport.hubserver import HubServer
from celeriac.transport.pg_schema import parse_store_url
from celeriac.transport.store import StoredMessage
from celeriac.transport.store_pg_shared import SharedPostgresStore
from celeriac.transport.store_postgres import PostgresStore


@pytest.fixture
def hubs(pg_url: str) -> Iterator[tuple[SharedPostgresStore, SharedPostgresStore]]:
    """Two shared stores on one schema, as hubs ``a`` and ``b``."""
    a, b = SharedPostgresStore(pg_url), SharedPostgresStore(pg_url)
    a.owner, b.owner = "a", "b"
    yield a, b
    a.abandon()
    b.abandon()


def row(mid: str, queue: str = "q", priority: int = 0, eta: float | None = None) -> StoredMessage:
    return StoredMessage(mid, queue, priority, eta, 0, b"h-" + mid.encode(), b"b-" + mid.encode())


def sql(pg_url: str, statement: str) -> None:
    """Run one statement on the test's schema (``{s}``), outside any hub."""
    url = parse_store_url(pg_url)
    with psycopg.connect(url.conninfo, autocommit=True) as conn:
        conn.execute(statement.format(s=f'"{url.schema}"'))


def test_publish_is_idempotent_and_claims_are_bounded_and_never_shared(
    hubs: tuple[SharedPostgresStore, SharedPostgresStore],
) -> None:
    a, b = hubs
    for mid in ("m1", "m2", "m3"):
        a.add_message(row(mid))
    a.commit()
    b.add_message(row("m1", priority=9))  # a resend through the other hub: changes nothing
    b.commit()
    first = a.claim({"q": 2})  # a's transaction still holds these rows
    second = b.claim({"q": 5})
    assert [c.row.id for c in first] == ["m1", "m2"]
    assert first[0].row.priority == 0
    assert first[0].row.body == b"b-m1"
    assert [c.row.id for c in second] == ["m3"]
    a.commit()
    b.commit()
    assert a.claim({"q": 5}) == []
    assert b.claim({"q": 5}) == []
    assert a.owned == {"m1", "m2"}


def test_delayed_rows_wait_for_their_eta_and_released_rows_come_back(
    hubs: tuple[SharedPostgresStore, SharedPostgresStore], pg_url: str
) -> None:
    a, b = hubs
    a.add_message(row("later", eta=time.time() + 3600))
    a.add_message(row("past", eta=time.time() - 1))
    a.commit()
    assert [c.row.id for c in a.claim({"q": 5})] == ["past"]
    a.release("past", "q", deliveries=1, lost=1)
    a.commit()
    again = b.claim({"q": 5})
    assert [(c.row.id, c.deliveries, c.lost) for c in again] == [("past", 1, 1)]
    b.commit()
    sql(pg_url, "UPDATE {s}.messages SET eta = 1 WHERE id = 'later'")
    assert a.heartbeat() == (0, 1)  # promoted: now claimable
    assert [c.row.id for c in a.claim({"q": 5})] == ["later"]
    a.commit()


def test_the_leases_of_a_dead_hub_are_taken_back_and_a_live_hubs_are_kept(
    hubs: tuple[SharedPostgresStore, SharedPostgresStore], pg_url: str
) -> None:
    a, b = hubs
    a.add_message(row("m1"))
    a.add_message(row("m2"))
    a.commit()
    a.heartbeat()
    assert len(a.claim({"q": 1})) == 1
    a.commit()
    sql(pg_url, "UPDATE {s}.messages SET lease_until = 0 WHERE owner = 'a'")
    assert b.heartbeat()[0] == 0  # a's lease ran out, but a was seen: kept
    b.commit()
    sql(pg_url, "UPDATE {s}.hubs SET seen_at = 0 WHERE hub_id = 'a'")  # a died
    assert b.heartbeat()[0] == 1
    b.commit()
    assert sorted(c.row.id for c in b.claim({"q": 5})) == ["m1", "m2"]
    b.commit()


def test_the_lease_ttl_is_the_reapers_setting(
    hubs: tuple[SharedPostgresStore, SharedPostgresStore], pg_url: str
) -> None:
    """``hub_shared_lease_ttl``: a hub unseen for 30 s keeps its rows with a 60 s lease and
    loses them with the default 10 s."""
    a, b = hubs
    a.add_message(row("m1"))
    a.commit()
    a.heartbeat()
    assert len(a.claim({"q": 1})) == 1
    a.commit()
    sql(pg_url, "UPDATE {s}.messages SET lease_until = 0 WHERE owner = 'a'")
    sql(pg_url, "UPDATE {s}.hubs SET seen_at = seen_at - 30 WHERE hub_id = 'a'")
    b.lease_ttl = 60.0
    assert b.heartbeat()[0] == 0
    b.commit()
    b.lease_ttl = 10.0
    assert b.heartbeat()[0] == 1
    b.commit()


def test_the_lease_and_beat_settings_reach_a_shared_hub(pg_url: str, tmp_path: Path) -> None:
    """``hub_shared_lease_ttl`` and ``hub_shared_beat_interval`` from the app's settings; a
    lease shorter than two beats is refused, saying why."""
    app = App("lease_settings", broker="tcp://127.0.0.1:1")
    app.conf.update(hub_shared_lease_ttl=30, hub_shared_beat_interval=2.5)
    hub = HubServer.from_settings(
        app.conf, data_dir=tmp_path, store_url=pg_url, shared=True, bind="tcp://127.0.0.1:*"
    )
    try:
        assert hub.state.beat_interval == 2.5  # type: ignore[attr-defined]
        assert hub.store.lease_ttl == 30.0  # type: ignore[attr-defined]
    finally:
        hub._close()
    app.conf.update(hub_shared_lease_ttl=3, hub_shared_beat_interval=2)
    with pytest.raises(ImproperlyConfigured, match="at least twice hub_shared_beat_interval"):
        HubLimits.from_settings(app.conf)


def test_rows_a_hub_owns_but_no_longer_holds_go_back(
    hubs: tuple[SharedPostgresStore, SharedPostgresStore],
) -> None:
    """After a failed commit lost a release, the hub gives back every row it does not hold."""
    a, b = hubs
    a.add_message(row("m1"))
    a.add_message(row("m2"))
    a.commit()
    assert len(a.claim({"q": 2})) == 2
    a.commit()
    assert a.release_strays(["m1"]) == 1
    a.commit()
    assert a.owned == {"m1"}
    assert [c.row.id for c in b.claim({"q": 5})] == ["m2"]
    b.commit()


def test_a_chord_counts_each_header_task_once_across_hubs(
    hubs: tuple[SharedPostgresStore, SharedPostgresStore],
) -> None:
    a, b = hubs
    a.add_message(row("unlock"))
    a.hold("unlock")
    a.chord_open("unlock", 2)
    a.chord_open("unlock", 2)  # a resent unlock
    a.add_message(row("h1"))
    a.add_message(row("h2"))
    a.commit()
    assert [c.row.id for c in a.claim({"q": 1})] == ["h1"]  # the unlock is held
    a.commit()
    assert [c.row.id for c in b.claim({"q": 5})] == ["h2"]
    b.commit()
    a.remove_message("h1")
    assert a.chord_count_down("unlock", "h1") == 1
    a.commit()
    a.owned.add("h1")  # as if a had lost its lease and a worker acknowledged h1 again
    assert a.chord_count_down("unlock", "h1") is None
    assert b.chord_count_down("unlock", "h2") == 0
    b.unhold("unlock")
    b.commit()
    assert [c.row.id for c in a.claim({"q": 5})] == ["unlock"]
    a.commit()


def test_locks_and_beat_lease_rows(hubs: tuple[SharedPostgresStore, SharedPostgresStore]) -> None:
    a, b = hubs
    assert a.lock("n", "o1", 30)
    a.commit()
    assert not b.lock("n", "o2", 30)
    assert b.locked("n")
    assert not b.unlock("n", "o2")
    b.commit()
    assert a.lock("n", "o1", 30)  # its owner again: extended
    assert a.unlock("n", "o1")
    a.commit()
    assert not b.locked("n")
    assert b.lock("n", "o2", 30)
    b.commit()
    assert a.meta_locked("beat.lease.k", b"empty") == b"empty"
    a.set_meta("beat.lease.k", b"taken")
    a.commit()
    assert b.meta_locked("beat.lease.k", b"empty") == b"taken"
    b.commit()


def test_shared_hubs_never_run_alongside_a_hub_that_is_not_shared(pg_url: str) -> None:
    alone = PostgresStore(pg_url)
    with pytest.raises(ImproperlyConfigured, match="without --shared"):
        SharedPostgresStore(pg_url)
    alone.abandon()
    shared = SharedPostgresStore(pg_url)
    with pytest.raises(ImproperlyConfigured, match="--shared"):
        PostgresStore(pg_url)
    shared.abandon()


def test_shared_needs_a_postgresql_store(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="needs a PostgreSQL store"):
        HubServer("tcp://127.0.0.1:*", tmp_path, shared=True)


def test_rows_left_by_a_hub_that_was_not_shared_keep_their_place(pg_url: str) -> None:
    alone = PostgresStore(pg_url)
    alone.add_message(dataclasses.replace(row("old"), seq=500))
    alone.close()
    shared = SharedPostgresStore(pg_url)
    shared.owner = "a"
    shared.add_message(row("new"))
    shared.commit()
    assert [c.row.id for c in shared.claim({"q": 5})] == ["old", "new"]
    shared.abandon()
