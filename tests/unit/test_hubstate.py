"""The sans-IO hub: routing, credit, acknowledgement, redelivery, delays, duplicates, results."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from celeriac._clock import FakeClock
from celeriac.transport.frames import TAG, decode, encode
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

W1, W2, C = b"w1", b"w2", b"client"


def queue_decl(name: str, max_priority: int | None = None, bindings: Any = ()) -> dict[str, Any]:
    return {"name": name, "max_priority": max_priority, "bindings": list(bindings)}


def declare(hub: HubState, exchanges: Any = (), queues: Any = ()) -> None:
    hub.handle(C, encode(b"DECLARE", {"exchanges": list(exchanges), "queues": list(queues)}))


def make_hub(**kw: Any) -> tuple[HubState, MemoryStore, FakeClock]:
    store = MemoryStore()
    clock = FakeClock()
    hub = HubState(store, clock, hub_id="hub-a", **kw)
    declare(hub, queues=[queue_decl("celery")])
    return hub, store, clock


def sent(hub: HubState, command: bytes | None = None) -> list[tuple[bytes, Any]]:
    """Take the outbox as (identity, decoded message), optionally one command only."""
    out = [(f[0], decode(f[1:])) for f in hub.outbox]
    hub.outbox.clear()
    return [(i, m) for i, m in out if command is None or m.command == command]


def hello(
    hub: HubState,
    who: bytes,
    *,
    credit: int = 1,
    queues: list[str] | None = None,
    inflight: list[str] | None = None,
) -> None:
    hub.handle(
        who,
        encode(
            b"HELLO",
            {
                "role": "worker",
                "node": who.decode(),
                "credit": credit,
                "queues": queues or ["celery"],
                "inflight": inflight or [],
            },
        ),
    )


def publish(
    hub: HubState, tid: str, *, queue: str = "celery", reply: bool = True, **extra: Any
) -> None:
    hub.handle(
        C,
        encode(
            b"PUB",
            {
                "id": tid,
                "task": "t",
                "queue": queue,
                "ct": "application/json",
                "reply": reply,
                **extra,
            },
            b"[[],{},{}]",
        ),
    )


def done(hub: HubState, who: bytes, tid: str, *, credit: int = 1, store: bool = True) -> None:
    hub.handle(
        who,
        encode(
            b"DONE",
            {
                "id": tid,
                "state": "SUCCESS",
                "ct": "application/json",
                "credit": credit,
                "store": store,
            },
            b"42",
        ),
    )


def test_publish_is_stored_confirmed_after_tick_and_delivered_within_credit() -> None:
    """A publish is stored, confirmed once per turn, and delivered only within credit."""
    hub, store, _ = make_hub()
    hello(hub, W1, credit=1)
    sent(hub)
    publish(hub, "a")
    publish(hub, "b")
    tasks = sent(hub, b"TASK")
    assert [m.header["id"] for _, m in tasks] == ["a"]
    assert {m.id for m in store.messages()} == {"a", "b"}
    hub.tick()
    confs = sent(hub, b"CONF")
    assert [who for who, _ in confs] == [C]
    assert confs[0][1].header["ids"] == ["a", "b"]


def test_done_acks_stores_result_pushes_it_and_returns_credit() -> None:
    """DONE removes the message, stores and pushes the result, and the credit brings the next."""
    hub, store, _ = make_hub()
    hello(hub, W1, credit=1)
    publish(hub, "a")
    publish(hub, "b")
    sent(hub)
    done(hub, W1, "a")
    out = sent(hub)
    assert [(i, m.command) for i, m in out] == [(C, b"RES"), (W1, b"TASK")]
    assert store.get_result("a") is not None
    assert {m.id for m in store.messages()} == {"b"}


def test_lost_worker_requeues_to_the_front_for_another_worker() -> None:
    """Deliveries of a worker that drops are sent to another consumer, oldest first."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=2)
    for tid in ("a", "b", "c"):
        publish(hub, tid)
    sent(hub)
    hello(hub, W2, credit=0)
    hub.peer_unreachable(W1)
    hub.handle(W2, encode(b"CRED", {"credit": 3}))
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["a", "b", "c"]


def test_missed_heartbeats_drop_the_worker() -> None:
    """A worker silent for three heartbeats loses its deliveries."""
    hub, _, clock = make_hub(heartbeat=1.0)
    hello(hub, W1, credit=1)
    publish(hub, "a")
    hello(hub, W2, credit=0)
    sent(hub)
    clock.advance(2.0)
    hub.handle(W2, encode(b"PING", {}))
    clock.advance(1.5)
    hub.tick()
    assert hub.statistics()["peers"].keys() == {"w2"}
    hub.handle(W2, encode(b"CRED", {"credit": 1}))
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["a"]


def test_duplicate_publish_is_confirmed_but_not_queued_twice() -> None:
    """A resent publish (same id) is confirmed again and not delivered twice."""
    hub, store, _ = make_hub()
    publish(hub, "a")
    publish(hub, "a")
    hello(hub, W1, credit=5)
    done(hub, W1, "a")
    publish(hub, "a")
    hub.tick()
    assert len(sent(hub, b"TASK")) == 1
    assert hub.counters["duplicates"] == 2
    assert list(store.messages()) == []


def test_eta_is_held_until_due() -> None:
    """A message with an eta in the future is delivered only once the clock passes it."""
    hub, _, clock = make_hub()
    hello(hub, W1, credit=5)
    publish(hub, "later", eta=clock.time() + 10)
    publish(hub, "now")
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["now"]
    assert hub.next_deadline() == clock.time() + 10
    clock.advance(10)
    hub.tick()
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["later"]


def test_expired_message_is_revoked_not_delivered() -> None:
    """A message past its expiry is stored and pushed as REVOKED and never reaches a worker."""
    hub, store, clock = make_hub()
    publish(hub, "old", expires=clock.time() + 1)
    clock.advance(5)
    hello(hub, W1, credit=5)
    out = sent(hub)
    assert [m for _, m in out if m.command == b"TASK"] == []
    stored = store.get_result("old")
    assert stored is not None
    assert stored.state == "REVOKED"
    pushed = [(i, m.header["id"], m.header["state"]) for i, m in out if m.command == b"RES"]
    assert pushed == [(C, "old", "REVOKED")]


def test_wait_gets_a_stored_result_or_the_push_later() -> None:
    """WAIT answers at once from the store, or registers for the push."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=5)
    publish(hub, "a", reply=False)
    done(hub, W1, "a")
    sent(hub)
    other = b"other-client"
    hub.handle(other, encode(b"HELLO", {"role": "client", "node": "c2"}))  # WAIT needs a HELLO
    sent(hub)
    hub.handle(other, encode(b"WAIT", {"ids": ["a", "b"]}))
    assert [(i, m.header["id"]) for i, m in sent(hub, b"RES")] == [(other, "a")]
    publish(hub, "b", reply=False)
    done(hub, W1, "b")
    assert [(i, m.header["id"]) for i, m in sent(hub, b"RES")] == [(other, "b")]


def test_garbage_distrusts_the_peer_and_requeues_its_work() -> None:
    """A malformed frame is counted, the sender distrusted, its deliveries requeued."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=1)
    publish(hub, "a")
    sent(hub)
    hub.handle(W1, [b"garbage"])
    hub.handle(W1, encode(b"CRED", {"credit": 5}))
    assert hub.counters["bad_frames"] == 1
    hello(hub, W2, credit=1)
    assert [(i, m.header["id"]) for i, m in sent(hub, b"TASK")] == [(W2, "a")]


@pytest.mark.parametrize(
    "bad",
    [
        {"id": 5, "queue": "q"},
        {"queue": "q"},
        {"id": "x"},
        {"id": "x", "queue": ""},
    ],
)
def test_bad_publishes_never_raise(bad: dict[str, Any]) -> None:
    """A publish with wrong fields is refused or distrusted, never an exception."""
    hub, _, _ = make_hub()
    hub.handle(C, [TAG, b"PUB", msgpack.packb(bad), b""])
    assert hub.counters["published"] == 0


def test_restart_restores_messages_and_hello_inflight_is_not_redelivered() -> None:
    """After a restart the stored messages are queued again, except those a worker still runs."""
    hub, store, clock = make_hub()
    for tid in ("a", "b"):
        publish(hub, tid)
    hub2 = HubState(store, clock, hub_id="hub-b")
    assert hub2.restore() == 2
    hello(hub2, W1, credit=5, inflight=["a"])
    assert [m.header["id"] for _, m in sent(hub2, b"TASK")] == ["b"]


def test_unknown_peer_is_asked_to_hello() -> None:
    """A worker the hub does not know (it restarted) is asked to introduce itself."""
    hub, _, _ = make_hub()
    hub.handle(W1, encode(b"CRED", {"credit": 1}))
    errs = sent(hub, b"ERR")
    assert errs
    assert errs[0][1].header["code"] == "hello"


def test_reject_with_requeue_goes_back_to_front() -> None:
    """REJ with requeue gives the message back at the head of its queue."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=1)
    publish(hub, "a")
    publish(hub, "b")
    sent(hub)
    hub.handle(W1, encode(b"REJ", {"id": "a", "requeue": True, "credit": 1}))
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["a"]


def test_unroutable_publish_is_refused_with_a_reason() -> None:
    """A publish no queue is bound to gets a NACK naming the exchange and key."""
    hub, store, _ = make_hub()
    hub.handle(C, encode(b"PUB", {"id": "x", "exchange": "nowhere", "routing_key": "k"}))
    nacks = sent(hub, b"NACK")
    assert nacks[0][1].header["id"] == "x"
    assert "nowhere" in nacks[0][1].header["reason"]
    assert list(store.messages()) == []


def test_unroutable_with_dead_letter_is_kept() -> None:
    """With unroutable=dead_letter the message is kept in the dead-letter queue."""
    hub, store, _ = make_hub()
    hub.handle(
        C,
        encode(
            b"PUB",
            {"id": "x", "exchange": "nowhere", "routing_key": "k", "unroutable": "dead_letter"},
        ),
    )
    assert [m.queue for m in store.messages()] == ["celeriac.unroutable"]


def test_topic_exchange_routes_by_pattern() -> None:
    """A topic binding routes matching keys to its queue only."""
    hub, _, _ = make_hub()
    declare(
        hub,
        [{"name": "feeds", "type": "topic"}],
        [queue_decl("feed_tasks", bindings=[{"exchange": "feeds", "routing_key": "feed.#"}])],
    )
    hello(hub, W1, credit=5, queues=["feed_tasks"])
    sent(hub)
    hub.handle(C, encode(b"PUB", {"id": "a", "exchange": "feeds", "routing_key": "feed.news.1"}))
    hub.handle(C, encode(b"PUB", {"id": "b", "exchange": "feeds", "routing_key": "image.x"}))
    out = sent(hub)
    assert [m.header["id"] for _, m in out if m.command == b"TASK"] == ["a"]
    assert [m.header["id"] for _, m in out if m.command == b"NACK"] == ["b"]


def test_fanout_gives_each_bound_queue_a_copy_with_its_own_tag() -> None:
    """A fanout publish is copied to every bound queue; each copy is acked by its tag."""
    hub, store, _ = make_hub()
    declare(
        hub,
        [{"name": "bc", "type": "fanout"}],
        [
            queue_decl("bc.w1", bindings=[{"exchange": "bc", "routing_key": ""}]),
            queue_decl("bc.w2", bindings=[{"exchange": "bc", "routing_key": ""}]),
        ],
    )
    hello(hub, W1, credit=5, queues=["bc.w1"])
    hello(hub, W2, credit=5, queues=["bc.w2"])
    sent(hub)
    hub.handle(C, encode(b"PUB", {"id": "m", "exchange": "bc", "routing_key": "", "reply": False}))
    tasks = sent(hub, b"TASK")
    assert sorted(w for w, _ in tasks) == [W1, W2]
    tags = {w: msgpack.unpackb(m.extra[0]).get("tag", m.header["id"]) for w, m in tasks}
    for who, tag in tags.items():
        hub.handle(
            who,
            encode(b"DONE", {"id": "m", "tag": tag, "state": "SUCCESS", "ct": "x", "store": False}),
        )
    assert list(store.messages()) == []


def test_priority_queue_delivers_highest_first_fifo_within() -> None:
    """On a queue with max_priority, higher priority goes first, FIFO within one priority."""
    hub, _, _ = make_hub()
    declare(hub, queues=[queue_decl("prio", max_priority=9)])
    for tid, prio in [("a", 1), ("b", 5), ("c", 1), ("d", 9), ("e", 5)]:
        hub.handle(C, encode(b"PUB", {"id": tid, "queue": "prio", "priority": prio}))
    hello(hub, W1, credit=10, queues=["prio"])
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["d", "b", "e", "a", "c"]


def test_declarations_survive_a_restart() -> None:
    """Exchanges and bindings are stored, so a restarted hub still routes."""
    hub, store, clock = make_hub()
    declare(
        hub,
        [{"name": "feeds", "type": "topic"}],
        [queue_decl("f", bindings=[{"exchange": "feeds", "routing_key": "feed.*"}])],
    )
    hub2 = HubState(store, clock, hub_id="hub-b")
    hub2.restore()
    assert hub2.table.route("feeds", "feed.x") == ["f"]


def test_conflicting_declaration_is_refused_without_distrust() -> None:
    """Redeclaring an exchange with another type is refused, and the peer is still served."""
    hub, _, _ = make_hub()
    declare(hub, [{"name": "ex", "type": "topic"}])
    sent(hub)
    declare(hub, [{"name": "ex", "type": "fanout"}])
    errs = sent(hub, b"ERR")
    assert errs[0][1].header["code"] == "declaration"
    assert hub.counters["bad_frames"] == 0


def test_reject_without_requeue_ends_rejected_and_frees_the_message() -> None:
    """REJ without requeue stores REJECTED with the worker's reason, pushes it, never redelivers."""
    hub, store, _ = make_hub()
    hello(hub, W1, credit=1)
    publish(hub, "a")
    sent(hub)
    hub.handle(
        W1, encode(b"REJ", {"id": "a", "requeue": False, "credit": 1, "reason": "bad input"})
    )
    out = sent(hub)
    assert [m for _, m in out if m.command == b"TASK"] == []
    stored = store.get_result("a")
    assert stored is not None
    assert stored.state == "REJECTED"
    assert msgpack.unpackb(stored.body)["exc_message"] == ["bad input"]
    assert list(store.messages()) == []
    pushed = [(i, m.header["state"]) for i, m in out if m.command == b"RES"]
    assert pushed == [(C, "REJECTED")]
    assert hub.statistics()["messages"] == 0
