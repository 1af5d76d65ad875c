"""The PostgreSQL store's own rules: versioned schema, one hub per schema, a lost connection.

The behaviour shared with SQLite (queue, results, restarts) is tested on both stores by the
``open_store`` fixture in the hub's tests; here is what only PostgreSQL has. Skipped, saying
why, where no PostgreSQL server answers (see ``pg_url`` in tests/conftest.py).
"""

from __future__ import annotations

import pytest

from celeriac._clock import FakeClock
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store import StoredMessage, StoredResult, StoreUnavailable

from ..waiting import wait_until

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (celeriac[postgres])")

from celeriac.transport.pg_connect import migrate  # noqa: E402
from celeriac.transport.pg_schema import (  # noqa: E402
    SCHEMA_VERSION,
    SchemaError,
    is_postgres_url,
    parse_store_url,
)
from celeriac.transport.store_postgres import RETRY_MIN, PostgresStore  # noqa: E402


def _version(url: str, value: int) -> None:
    target = parse_store_url(url)
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        conn.execute(f'UPDATE "{target.schema}".schema_version SET version = %s', (value,))


def _kill_backend(store: PostgresStore) -> None:
    """Terminate the store's server process from another connection: a lost connection."""
    assert store._conn is not None
    pid = store._conn.info.backend_pid
    with psycopg.connect(store.url.conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_store_urls_are_parsed_with_their_schema() -> None:
    """?schema= is ours (taken off before libpq sees it); a bad name is one clear error."""
    url = parse_store_url("postgresql://u@h:5433/db?schema=hub_a&connect_timeout=3")
    assert url.schema == "hub_a"
    assert url.conninfo == "postgresql://u@h:5433/db?connect_timeout=3"
    assert parse_store_url("postgres://h/db").schema == "celeriac"
    assert is_postgres_url("postgresql://h/db")
    assert not is_postgres_url("tcp://127.0.0.1:5555")
    with pytest.raises(ImproperlyConfigured, match="schema"):
        parse_store_url("postgresql://h/db?schema=Robert');DROP")
    with pytest.raises(ImproperlyConfigured, match="postgresql://"):
        parse_store_url("mysql://h/db")


def test_the_schema_is_created_then_migrated_only_on_request(pg_url: str) -> None:
    """First start creates it; --migrate is idempotent; an older schema needs --migrate; a
    newer one (a newer celeriac's) is refused."""
    PostgresStore(pg_url).close()
    assert migrate(pg_url)[:2] == (SCHEMA_VERSION, SCHEMA_VERSION)  # nothing to do
    _version(pg_url, SCHEMA_VERSION + 1)
    with pytest.raises(SchemaError, match="newer than this celeriac"):
        PostgresStore(pg_url)
    with pytest.raises(SchemaError, match="newer"):
        migrate(pg_url)
    if SCHEMA_VERSION > 1:  # pragma: no cover - once a second version exists
        _version(pg_url, SCHEMA_VERSION - 1)
        with pytest.raises(SchemaError, match="--migrate"):
            PostgresStore(pg_url)
        assert migrate(pg_url)[:2] == (SCHEMA_VERSION - 1, SCHEMA_VERSION)


def test_one_hub_per_schema(pg_url: str) -> None:
    """A second store on a schema in use is refused; once the first is gone it opens."""
    first = PostgresStore(pg_url)
    with pytest.raises(ImproperlyConfigured, match="another hub is already using"):
        PostgresStore(pg_url)
    first.abandon()  # as a killed hub: the server drops its lock with its connection
    PostgresStore(pg_url).close()


def test_an_unreachable_server_at_start_is_one_clear_error() -> None:
    """Nothing listens there: ImproperlyConfigured naming the address, not a traceback."""
    with pytest.raises(ImproperlyConfigured, match=r"cannot use the PostgreSQL store .*:1/"):
        PostgresStore("postgresql://127.0.0.1:1/test?connect_timeout=2")


def test_a_lost_connection_fails_the_turn_then_reconnects(pg_url: str) -> None:
    """The server ends the connection: the turn's commit fails (nothing of it is kept, later
    commits cannot confirm it), then the store reconnects after its backoff."""
    store = PostgresStore(pg_url)
    store.add_message(StoredMessage("kept", "q", 0, None, 1, b"h", b"b"))
    store.commit()
    _kill_backend(store)
    store.add_message(StoredMessage("lost", "q", 0, None, 2, b"h", b"b"))
    with pytest.raises(StoreUnavailable, match="PostgreSQL unavailable"):
        store.commit()
    refusals: list[str] = []

    def committed() -> bool:  # the backoff: refused at once until the next attempt is due
        store.set_meta("probe", b"1")
        try:
            store.commit()
        except StoreUnavailable as exc:
            refusals.append(str(exc))
            return False
        return True

    wait_until(committed, 20.0, "the store to reconnect")
    assert refusals
    assert all("next attempt in" in r for r in refusals)
    assert [m.id for m in store.messages()] == ["kept"]
    store.close()


def test_writes_lost_with_the_connection_are_never_confirmed_by_a_later_commit(
    pg_url: str,
) -> None:
    """A read meets the lost connection mid-turn: commit still fails until rollback."""
    store = PostgresStore(pg_url)
    store.add_message(StoredMessage("a", "q", 0, None, 1, b"h", b"b"))
    _kill_backend(store)
    assert store.get_payload("a") == (b"h", b"b")  # a pending write answers its own read
    with pytest.raises(StoreUnavailable):
        store.get_result("a")  # this one asks the server
    store._retry_at = 0.0  # the server is back at once
    with pytest.raises(StoreUnavailable):
        store.commit()  # "a" went with the connection: this turn cannot succeed
    store.commit()  # the next one reconnects
    assert list(store.messages()) == []
    store.close()


def test_publishes_during_an_outage_are_refused_with_store_unavailable(pg_url: str) -> None:
    """At the hub: the failed turn's publish is NACKed 'hub store unavailable', then
    publishes are accepted again once a probe commits."""
    store = PostgresStore(pg_url)
    clock = FakeClock()
    hub = HubState(store, clock, hub_id="h")
    client = b"client"
    hub.handle(
        client, p.encode(p.Hello("client", "c", declare=p.Declare(queues=(p.QueueDecl("q"),))))
    )
    _kill_backend(store)
    hub.handle(client, p.encode(p.Publish((p.TaskMessage("t1", "t", b"[]", queue="q"),))))
    hub.tick()
    try:
        store.commit()
    except StoreUnavailable as exc:
        hub.commit_failed(exc)
    replies = [p.decode(f[1:]) for f in hub.outbox]
    nacks = [m for m in replies if isinstance(m, p.Nack)]
    assert [r.id for r in nacks[0].refusals] == ["t1"]
    assert nacks[0].refusals[0].reason.startswith("hub store unavailable")
    assert not any(isinstance(m, p.Confirm) for m in replies)
    store._retry_at = 0.0
    clock.advance(5.0)
    assert hub.probe_due()
    hub.probe()
    store.commit()
    hub.storage_works()
    assert hub.storage_error is None
    store.close()


def test_hub_store_url_is_a_setting_also_read_from_the_environment() -> None:
    """CELERIAC_HUB_STORE_URL sets it; anything but a PostgreSQL URL is refused at once."""
    from celeriac import App  # noqa: PLC0415

    url = "postgresql://celeriac@db:5432/celeriac?schema=hub_a"
    assert App("a", environ={"CELERIAC_HUB_STORE_URL": url}).conf["hub_store_url"] == url
    assert App("b", environ={}).conf["hub_store_url"] is None
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL URL"):
        App("c", environ={"CELERIAC_HUB_STORE_URL": "mysql://db/x"}).conf["hub_store_url"]


def test_reconnection_backs_off_while_the_server_stays_away(pg_url: str) -> None:
    """Each failed attempt doubles the wait before the next; the server back, it connects."""
    import dataclasses  # noqa: PLC0415

    store = PostgresStore(pg_url)
    good = store.url
    _kill_backend(store)
    store.url = dataclasses.replace(good, conninfo="postgresql://127.0.0.1:1/test")
    delays = []
    for _ in range(3):
        store.set_meta("probe", b"1")
        store._retry_at = 0.0  # the attempt is due now
        with pytest.raises(StoreUnavailable, match="PostgreSQL unavailable"):
            store.commit()
        delays.append(store._delay)
    assert delays == sorted(delays)
    assert delays[-1] > delays[0]
    store.url = good
    store._retry_at = 0.0
    store.set_meta("probe", b"2")
    store.commit()
    assert store.get_meta("probe") == b"2"
    assert store._delay == RETRY_MIN
    store.close()


def test_known_results_are_found_in_one_read_after_a_restart(pg_url: str) -> None:
    """results_among: the pending writes, then the database for the ids the filter keeps."""
    store = PostgresStore(pg_url)
    store.put_result(StoredResult("done-1", "SUCCESS", b"h", b"b"), None)
    assert store.results_among(["done-1", "new-1"]) == {"done-1"}  # from the pending write
    store.put_result(StoredResult("done-2", "SUCCESS", b"h", b"b"), None)
    store.forget_result("done-2")
    store.commit()
    assert store.results_among(["done-1", "done-2", "new-1"]) == {"done-1"}
    store.close()
    again = PostgresStore(pg_url)  # a new hub: its filter is loaded from the table
    assert again.results_among(["done-1", "new-2"]) == {"done-1"}
    assert again.get_result("done-2") is None
    again.close()


def test_rows_set_aside_are_kept_with_their_reason(pg_url: str) -> None:
    """set_aside moves the row into the set_aside table, even one written in this turn."""
    store = PostgresStore(pg_url)
    row = StoredMessage("odd", "q", 0, None, 1, b"\xc1", b"b")
    store.add_message(row)
    store.set_aside(row, "its header does not decode", 5.0)
    store.commit()
    assert store.set_aside_rows() == [("odd", "its header does not decode")]
    assert list(store.messages()) == []
    store.close()


def test_sync_modes() -> None:
    """hub_sync is normal or full, as for SQLite."""
    with pytest.raises(ValueError, match="hub_sync"):
        PostgresStore("postgresql://127.0.0.1/test", sync="fast")
