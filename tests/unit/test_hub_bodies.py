"""Queued bodies live in the store, not in hub RAM: a bounded window of recent ones, the
others read back at delivery, after a restart too (over real SQLite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgpack
from structlog.testing import capture_logs

from celeriac import states
from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hub.bodies import BODY_ENTRY_OVERHEAD
from celeriac.transport.hub.limits import HubLimits
from celeriac.transport.hub.model import POISON_QUEUE
from celeriac.transport.hubstate import HubState
from celeriac.transport.store import SQLiteStore, Store

C, W = b"client", b"w1"
DECLARE = p.Declare(queues=(p.QueueDecl("celery"),))


def open_hub(opener: Any, window: int, **kw: int) -> tuple[HubState, Store]:
    """A hub on the store ``opener`` opens (a path: SQLite there; else the store fixture)."""
    store = SQLiteStore(opener / "hub.sqlite3") if isinstance(opener, Path) else opener()
    hub = HubState(store, FakeClock(), hub_id="h", **kw)
    hub.apply_limits(HubLimits(body_window_size=window))
    hub.restore()
    store.commit()
    return hub, store


def body(i: int) -> bytes:
    return f"[[{i}], {{}}, {{}}]".encode() + b" " * 100


def publish(hub: HubState, store: Store, n: int) -> None:
    hub.handle(C, p.encode(DECLARE))
    tasks = tuple(p.TaskMessage(f"t{i}", "t", body(i), queue="celery") for i in range(n))
    hub.handle(C, p.encode(p.Publish(tasks)))
    hub.tick()
    store.commit()
    hub.outbox.clear()


def deliveries(hub: HubState, credit: int) -> dict[str, bytes]:
    hub.handle(W, p.encode(p.Hello("worker", "w1", queues=("celery",), credit=credit)))
    got: dict[str, bytes] = {}
    for frames in hub.outbox:
        message = p.decode(frames[1:])
        if isinstance(message, p.Deliver):
            got.update((d.task.id, d.task.body) for d in message.deliveries)
    hub.outbox.clear()
    return got


def light(hub: HubState) -> set[str]:
    return {mid for mid, msg in hub._messages.items() if msg.light}


def test_bodies_beyond_the_window_leave_ram_and_are_read_back_at_delivery(
    open_store: Any,
) -> None:
    """A window of two bodies: of five queued, the three oldest are light (header only);
    every delivery still carries its exact body, three of them read from the store."""
    hub, store = open_hub(open_store, window=2 * (len(body(0)) + BODY_ENTRY_OVERHEAD))
    publish(hub, store, 5)
    assert light(hub) == {"t0", "t1", "t2"}
    assert all(hub._messages[m].task.body == b"" for m in light(hub))
    assert hub.statistics()["body_window"] == 2
    assert deliveries(hub, credit=5) == {f"t{i}": body(i) for i in range(5)}
    assert hub.counters["bodies_read"] == 3
    store.close()


def test_a_restart_loads_headers_only(open_store: Any) -> None:
    """After a restart every queued message is light; deliveries read their bodies, and a
    redelivery (the worker lost) reads it again."""
    hub, store = open_hub(open_store, window=1 << 20)
    publish(hub, store, 3)
    assert light(hub) == set()
    store.close()
    hub, store = open_hub(open_store, window=1 << 20)
    assert light(hub) == {"t0", "t1", "t2"}
    assert deliveries(hub, credit=3) == {f"t{i}": body(i) for i in range(3)}
    hub.peer_unreachable(W)
    assert deliveries(hub, credit=3) == {f"t{i}": body(i) for i in range(3)}
    assert hub.counters["bodies_read"] == 6
    store.close()


def test_a_body_missing_from_the_store_rejects_its_task_not_the_hub(tmp_path: Path) -> None:
    """A damaged row (its body is not a blob): the task ends REJECTED with the reason, the
    others are delivered, and the error is logged and counted."""
    hub, store = open_hub(tmp_path, window=0)
    publish(hub, store, 2)
    db = sqlite3.connect(tmp_path / "hub.sqlite3")
    db.execute("UPDATE messages SET body = 'text' WHERE id = 't0'")
    db.commit()
    db.close()
    with capture_logs() as logs:
        got = deliveries(hub, credit=2)
    assert got == {"t1": body(1)}
    result = store.get_result("t0")
    assert result is not None
    assert result.state == states.REJECTED
    assert "body is missing" in str(msgpack.unpackb(result.body))
    assert hub.counters["internal_errors"] == 1
    assert [e["id"] for e in logs if e["event"] == "message_body_missing"] == ["t0"]
    store.close()


def test_a_light_poison_message_keeps_its_body_in_the_dead_letter_queue(
    open_store: Any,
) -> None:
    """Moving a light message to the dead-letter queue rewrites its row with its real body."""
    hub, store = open_hub(open_store, window=0, max_deliveries=1)
    publish(hub, store, 1)
    assert deliveries(hub, credit=1) == {"t0": body(0)}
    hub.peer_unreachable(W)
    store.commit()
    rows = list(store.messages())
    assert [(r.id, r.queue, r.body) for r in rows] == [("t0", POISON_QUEUE, body(0))]
    store.close()


def test_a_retried_message_runs_with_its_new_body(open_store: Any) -> None:
    """A RETRY outcome replaces the body of a light message: the next delivery has it."""
    hub, store = open_hub(open_store, window=0)
    publish(hub, store, 1)
    assert deliveries(hub, credit=1) == {"t0": body(0)}
    retry = p.ResultMessage("t0", states.RETRY, b"[[99], {}, {}]", credit=1, retry_eta=1.0)
    hub.handle(W, p.encode(p.Done((retry,))))
    got: dict[str, bytes] = {}
    for frames in hub.outbox:
        message = p.decode(frames[1:])
        if isinstance(message, p.Deliver):
            got.update((d.task.id, d.task.body) for d in message.deliveries)
    assert got == {"t0": b"[[99], {}, {}]"}
    store.close()


def test_a_burst_of_publishes_is_confirmed_in_decodable_chunks(open_store: Any) -> None:
    """3,000 publishes in one turn: their CONF is split so every header stays under the 64 KiB
    a peer decodes (one CONF of 3,000 ids was 114 KB: the publisher could not read it)."""
    hub, store = open_hub(open_store, window=1 << 20)
    hub.handle(C, p.encode(DECLARE))
    for k in range(30):
        tasks = tuple(
            p.TaskMessage(f"{k}-{i}-" + "x" * 30, "t", b"[]", queue="celery") for i in range(100)
        )
        hub.handle(C, p.encode(p.Publish(tasks)))
    hub.tick()
    store.commit()
    confirmed: list[str] = []
    for frames in hub.outbox:
        confirm = p.decode(frames[1:])
        assert isinstance(confirm, p.Confirm)
        confirmed.extend(confirm.ids)
    assert len(hub.outbox) > 1
    assert sorted(confirmed) == sorted(hub._messages)
    store.close()


def test_an_acknowledged_message_leaves_the_window_at_once(open_store: Any) -> None:
    """Issue 16 (memory after a drain): once acknowledged, a message's id and bytes leave the
    body window; the window does not keep ids of messages gone until newer ones push them out."""
    hub, store = open_hub(open_store, window=1 << 20)
    publish(hub, store, 5)
    assert hub.statistics()["body_window"] == 5
    got = deliveries(hub, credit=5)
    done = tuple(p.ResultMessage(tid, states.SUCCESS, store=False, credit=1) for tid in got)
    hub.handle(W, p.encode(p.Done(done)))
    store.commit()
    stats = hub.statistics()
    assert (stats["body_window"], stats["body_window_bytes"]) == (0, 0)
    store.close()
