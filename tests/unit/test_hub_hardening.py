"""The issue's probes over real SQLite: refused, counted, and the hub restarts on what it kept."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import msgpack
import pytest
from structlog.testing import capture_logs

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hub.limits import MAX_CREDIT
from celeriac.transport.hubstate import HubState
from celeriac.transport.store import SQLiteStore, Store

C, W = b"client", b"w1"
JSON = "application/json"

#: (command, header) probes from the issue: each used to crash the hub or keep it down.
PROBES: list[tuple[bytes, dict[str, Any]]] = [
    (b"STAT", {"id": ["a", "list"]}),
    (b"STAT", {"id": 2**63}),
    (b"WAIT", {"ids": [2**64 - 1]}),
    (b"WAIT", {"ids": "not-a-list"}),
    (b"FORGET", {"id": [1]}),
    (b"FORGET", {"id": 2**63}),
    (b"HELLO", {"role": "worker", "node": "n", "credit": math.inf}),
    (b"HELLO", {"role": "worker", "node": "n", "credit": 2**64 - 1}),
    (b"CRED", {"credit": math.inf}),
    (b"CRED", {"credit": "5"}),
    (b"DONE", {"id": 2**64 - 1, "state": "SUCCESS", "ct": JSON}),
    (b"DONE", {"id": "x", "state": "SUCCESS", "ct": JSON, "credit": math.inf}),
    (b"PUB", {"id": "a", "task": "t", "ct": JSON, "queue": "celery", "eta": "soon"}),
    (b"PUB", {"id": "b", "task": "t", "ct": JSON, "queue": "celery", "eta": [1]}),
    (b"PUB", {"id": "c", "task": "t", "ct": JSON, "queue": "celery", "priority": 2**63}),
    (b"PUB", {"id": "d", "task": "t", "ct": JSON, "queue": "celery", "eta": math.nan}),
    (b"PUB", {"id": "e", "task": "t", "ct": JSON, "queue": "celery", "expires": 1e300}),
]


def open_hub(opener: Any, clock: FakeClock | None = None) -> tuple[HubState, Store]:
    """A hub on the store ``opener`` opens (a path: SQLite there; else the store fixture)."""
    store = SQLiteStore(opener / "hub.sqlite3") if isinstance(opener, Path) else opener()
    hub = HubState(store, clock or FakeClock(), hub_id="h")
    hub.restore()
    store.commit()
    return hub, store


def turn(hub: HubState, store: Store) -> None:
    hub.tick()
    store.commit()


def send(hub: HubState, who: bytes, command: bytes, header: dict[str, Any]) -> None:
    hub.handle(who, [p.TAG, command, msgpack.packb(header), b""])


def publish(hub: HubState, tid: str, who: bytes = C) -> None:
    task = p.TaskMessage(tid, "t", b"[[],{},{}]", queue="celery", reply=True)
    hub.handle(who, p.encode(p.Publish((task,))))


def out(hub: HubState, kind: type) -> list[tuple[bytes, Any]]:
    msgs = [(f[0], p.decode(f[1:])) for f in hub.outbox]
    hub.outbox.clear()
    return [(who, m) for who, m in msgs if isinstance(m, kind)]


def setup(hub: HubState) -> None:
    hub.handle(
        C, p.encode(p.Hello("client", "c", declare=p.Declare(queues=(p.QueueDecl("celery"),))))
    )


@pytest.mark.parametrize(("command", "header"), PROBES, ids=lambda v: repr(v)[:40])
def test_each_probe_is_refused_and_the_hub_restarts(
    open_store: Any, command: bytes, header: dict[str, Any]
) -> None:
    """Each probe of the issue is a counted bad frame, stores nothing, and a restart comes up."""
    hub, store = open_hub(open_store)
    setup(hub)
    send(hub, b"attacker", command, header)
    turn(hub, store)
    assert hub.counters["bad_frames"] == 1
    assert hub.counters["internal_errors"] == 0
    assert list(store.messages()) == []
    store.close()
    hub, store = open_hub(open_store)
    assert hub.counters["set_aside"] == 0
    store.close()


def test_a_damaged_row_is_set_aside_with_its_reason_and_the_hub_comes_up(tmp_path: Path) -> None:
    """Rows with a bad eta, a bad header or a mismatched id move to set_aside; good ones stay."""
    hub, store = open_hub(tmp_path)
    setup(hub)
    for tid in ("good", "bad-eta", "bad-header", "bad-id"):
        publish(hub, tid)
    turn(hub, store)
    store.close()
    db = sqlite3.connect(tmp_path / "hub.sqlite3")
    with db:
        db.execute("UPDATE messages SET eta = 'soon' WHERE id = 'bad-eta'")
        db.execute("UPDATE messages SET header = X'c1' WHERE id = 'bad-header'")
        db.execute("UPDATE messages SET id = 'other' WHERE id = 'bad-id'")
        db.execute("UPDATE meta SET value = X'c1' WHERE key = 'bindings'")
    db.close()
    with capture_logs() as logs:
        hub, store = open_hub(tmp_path)
    assert [m.id for m in store.messages()] == ["good"]
    aside = dict(store.set_aside_rows())
    assert set(aside) == {"bad-eta", "bad-header", "other"}
    assert "eta" in aside["bad-eta"]
    assert "does not decode" in aside["bad-header"]
    assert "does not match" in aside["other"]
    assert hub.counters["set_aside"] == 3
    assert sum(e["event"] == "message_set_aside" for e in logs) == 3
    assert any(e["event"] == "bindings_not_restored" for e in logs)
    store.close()


def test_a_bug_in_tick_is_logged_as_the_hubs_and_the_hub_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside tick() is hub_internal_error, counted; the next tick runs again."""
    hub, store = open_hub(tmp_path)

    def broken() -> None:
        raise KeyError("bug")

    monkeypatch.setattr(hub, "_flush_confirms", broken)
    hub._confirms[b"client"] = ["m1"]  # confirms due: the tick flushes them (and fails)
    with capture_logs() as logs:
        hub.tick()
        hub.tick()
    assert hub.counters["internal_errors"] == 2
    assert [e["command"] for e in logs if e["event"] == "hub_internal_error"] == ["tick"] * 2
    store.close()


def test_credit_is_capped_per_peer(tmp_path: Path) -> None:
    """Repeated CRED cannot give one peer more than MAX_CREDIT deliveries outstanding."""
    hub, store = open_hub(tmp_path)
    hub.handle(W, p.encode(p.Hello("worker", "w1", queues=("celery",), credit=p.MAX_COUNT)))
    for _ in range(3):
        hub.handle(W, p.encode(p.Credit(p.MAX_COUNT)))
    assert hub.statistics()["peers"]["w1"]["credit"] == MAX_CREDIT
    store.close()
