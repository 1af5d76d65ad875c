"""The sans-IO hub and lost workers: dead letters, failing lost work on request, re-probes."""

from __future__ import annotations

from typing import Any

import msgpack

from celeriac._clock import FakeClock
from celeriac.transport.frames import decode, encode
from celeriac.transport.hubstate import POISON_QUEUE, HubState
from celeriac.transport.store_memory import MemoryStore

C = b"client"


def make_hub(clock: FakeClock | None = None, **kw: Any) -> tuple[HubState, MemoryStore]:
    store = MemoryStore()
    hub = HubState(store, clock or FakeClock(), hub_id="hub-a", **kw)
    decl = {"exchanges": [], "queues": [{"name": "celery", "max_priority": None, "bindings": []}]}
    hub.handle(C, encode(b"DECLARE", decl))
    return hub, store


def hello(hub: HubState, who: bytes, *, queues: list[str] | None = None, **extra: Any) -> None:
    header = {"role": "worker", "node": who.decode(), "credit": 1}
    header["queues"] = queues or ["celery"]
    hub.handle(who, encode(b"HELLO", {**header, **extra}))


def publish(hub: HubState, tid: str) -> None:
    header = {"id": tid, "task": "t.poison", "queue": "celery", "ct": "application/json"}
    hub.handle(C, encode(b"PUB", {**header, "reply": True}, b"[[],{},{}]"))


def take(hub: HubState, command: bytes) -> list[tuple[bytes, Any]]:
    out = [(f[0], decode(f[1:])) for f in hub.outbox]
    hub.outbox.clear()
    return [(who, m) for who, m in out if m.command == command]


def lose_workers(hub: HubState, times: int) -> None:
    """A fresh worker takes the message and is lost, ``times`` times."""
    for n in range(times):
        who = f"w{n}".encode()
        hello(hub, who)
        assert [m.header["id"] for _, m in take(hub, b"TASK")] == ["p"]
        hub.peer_unreachable(who)


def failure(hub: HubState, store: MemoryStore, tid: str) -> dict[str, Any]:
    stored = store.get_result(tid)
    assert stored is not None
    assert stored.state == "FAILURE"
    info: dict[str, Any] = msgpack.unpackb(stored.body, raw=False)
    return info


def test_poison_message_is_dead_lettered_after_max_deliveries() -> None:
    """After max_deliveries lost workers the message is kept in the dead-letter queue, failed."""
    hub, store = make_hub(max_deliveries=3)
    publish(hub, "p")
    lose_workers(hub, 2)
    assert store.get_result("p") is None  # still redelivered twice
    lose_workers(hub, 1)
    info = failure(hub, store, "p")
    assert info["exc_type"] == "WorkerLostError"
    assert info["exc_message"][0].startswith("delivered 3 times; each time its worker was lost")
    assert [m.queue for m in store.messages()] == [POISON_QUEUE]
    stats = hub.statistics()
    assert stats["dead_lettered"] == 1
    assert stats["dead_letters"][0]["id"] == "p"
    assert stats["queues"][POISON_QUEUE] == 1
    hello(hub, b"w9")  # an ordinary consumer does not get it
    assert take(hub, b"TASK") == []


def test_waiting_client_gets_the_failure_and_dead_letter_consumer_the_message() -> None:
    """The publisher's waiter gets the result; a consumer of the DLQ gets the annotated task."""
    hub, _ = make_hub(max_deliveries=1)
    publish(hub, "p")
    lose_workers(hub, 1)
    results = take(hub, b"RES")
    assert [who for who, _ in results] == [C]
    hello(hub, b"dlq", queues=[POISON_QUEUE])
    tasks = take(hub, b"TASK")
    assert [m.header["id"] for _, m in tasks] == ["p"]
    assert "its worker was lost" in tasks[0][1].header["dead_letter"]["reason"]


def test_dead_letter_survives_a_hub_restart() -> None:
    """The dead letter is stored durably in its queue."""
    hub, store = make_hub(max_deliveries=1)
    publish(hub, "p")
    lose_workers(hub, 1)
    again = HubState(store, FakeClock(), hub_id="hub-b")
    assert again.restore() == 1
    assert again.statistics()["queues"] == {POISON_QUEUE: 1}


def test_bye_and_reject_do_not_count_as_losses() -> None:
    """A worker that says BYE or REJ hands the message back without counting a loss."""
    hub, store = make_hub(max_deliveries=1)
    publish(hub, "p")
    hello(hub, b"w1")
    take(hub, b"TASK")
    hub.handle(b"w1", encode(b"BYE", {}))
    hello(hub, b"w2")
    take(hub, b"TASK")
    hub.handle(b"w2", encode(b"REJ", {"id": "p", "requeue": True, "credit": 1}))
    assert [m.header["id"] for _, m in take(hub, b"TASK")] == ["p"]
    assert store.get_result("p") is None
    assert hub.statistics()["dead_lettered"] == 0


def test_worker_that_asked_fails_lost_work_instead_of_requeueing() -> None:
    """HELLO on_lost=fail: what the lost worker held ends FAILURE WorkerLostError."""
    hub, store = make_hub()
    publish(hub, "p")
    hello(hub, b"w1", on_lost="fail")
    take(hub, b"TASK")
    hub.peer_unreachable(b"w1")
    info = failure(hub, store, "p")
    assert info["exc_type"] == "WorkerLostError"
    assert "task_reject_on_worker_lost" in info["exc_message"][0]
    assert list(store.messages()) == []
    assert hub.statistics()["lost_failed"] == 1
    hello(hub, b"w2")
    assert take(hub, b"TASK") == []


def test_a_closed_connection_makes_the_hub_probe_workers_again_shortly_after() -> None:
    """probe_peers pings the workers now and again at REPROBE_AFTER (the first may be too early)."""
    clock = FakeClock()
    hub, _ = make_hub(clock)
    hello(hub, b"w1")
    take(hub, b"PING")
    hub.probe_peers()
    assert [who for who, _ in take(hub, b"PING")] == [b"w1"]
    pings = []
    for step in (0.05, 0.1, 0.2, 0.5, 1.0, 5.0):
        clock.advance(step)
        hub.tick()
        pings.append(len(take(hub, b"PING")))
    assert pings == [0, 1, 1, 0, 1, 0]
