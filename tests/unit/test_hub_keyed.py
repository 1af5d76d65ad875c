"""The sans-IO hub's keyed actors and locks: placement, one at a time, state, idle, expiry."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

C = b"client"
CLS = "app.Counter"
HOST = p.host_queue(CLS)


def make_hub(clock: FakeClock | None = None, store: MemoryStore | None = None) -> HubState:
    hub = HubState(store or MemoryStore(), clock or FakeClock(), hub_id="hub-a")
    hub.handle(C, p.encode(p.Hello("client")))
    hub.outbox.clear()
    return hub


def worker(hub: HubState, who: bytes) -> None:
    hub.handle(who, p.encode(p.Hello("worker", who.decode(), queues=(HOST,), credit=4)))


def call(hub: HubState, tid: str, key: str) -> None:
    task = p.TaskMessage(tid, f"{CLS}.incr", b"[[1],{},{}]", queue=p.keyed_queue(CLS, key))
    hub.handle(C, p.encode(p.Publish((task,))))


def done(hub: HubState, who: bytes, tid: str) -> None:
    hub.handle(who, p.encode(p.Done((p.ResultMessage(tid, "SUCCESS", b"1"),))))


def sent(hub: HubState) -> list[tuple[bytes, Any]]:
    out = [(f[0], p.decode(f[1:])) for f in hub.outbox]
    hub.outbox.clear()
    return [
        (who, m)
        for who, m in out
        if isinstance(m, p.Deliver | p.KeyedActivate | p.KeyedStop | p.Reply)
    ]


def tasks(out: list[tuple[bytes, Any]]) -> list[tuple[bytes, str]]:
    return [(who, d.task.id) for who, m in out if isinstance(m, p.Deliver) for d in m.deliveries]


def test_one_message_per_key_in_flight_in_order() -> None:
    """A key's next message goes out only after the DONE of the one before, in publish order."""
    hub = make_hub()
    worker(hub, b"w1")
    for i in range(3):
        call(hub, f"t{i}", "k")
    out = sent(hub)
    assert isinstance(out[0][1], p.KeyedActivate)
    assert out[0][1].state is None
    assert tasks(out) == [(b"w1", "t0")]
    done(hub, b"w1", "t0")
    assert tasks(sent(hub)) == [(b"w1", "t1")]
    done(hub, b"w1", "t1")
    assert tasks(sent(hub)) == [(b"w1", "t2")]


def test_keys_spread_over_hosting_workers() -> None:
    """Two keys on two hosting workers land on different workers; a key stays where placed."""
    hub = make_hub()
    worker(hub, b"w1")
    worker(hub, b"w2")
    call(hub, "a0", "a")
    call(hub, "b0", "b")
    placed = {tid: who for who, tid in tasks(sent(hub))}
    assert placed["a0"] != placed["b0"]
    done(hub, placed["a0"], "a0")
    call(hub, "a1", "a")
    assert tasks(sent(hub)) == [(placed["a0"], "a1")]


def test_messages_wait_for_a_host_and_are_stored() -> None:
    """With no worker hosting the class the call waits, stored; a host joining gets it."""
    hub = make_hub()
    call(hub, "t0", "k")
    assert tasks(sent(hub)) == []
    assert [m.id for m in hub.store.messages()] == ["t0"]
    worker(hub, b"w1")
    assert tasks(sent(hub)) == [(b"w1", "t0")]


def test_lost_worker_key_moves_with_its_saved_state_and_message() -> None:
    """The holder dies mid-call: the call is redelivered first, elsewhere, after an activation
    carrying the last state the holder saved."""
    hub = make_hub()
    worker(hub, b"w1")
    call(hub, "t0", "k")
    call(hub, "t1", "k")
    queue = p.keyed_queue(CLS, "k")
    hub.handle(b"w1", p.encode(p.KeyedSave(queue, b"state-1")))
    done(hub, b"w1", "t0")
    assert tasks(sent(hub)) == [(b"w1", "t0"), (b"w1", "t1")]
    worker(hub, b"w2")
    hub.peer_unreachable(b"w1")
    out = sent(hub)
    activations = [(who, m.state) for who, m in out if isinstance(m, p.KeyedActivate)]
    assert activations == [(b"w2", b"state-1")]
    assert tasks(out) == [(b"w2", "t1")]


def test_state_from_a_worker_the_key_is_not_placed_on_is_refused() -> None:
    """A stale worker cannot overwrite the stored state."""
    hub = make_hub()
    worker(hub, b"w1")
    worker(hub, b"w2")
    call(hub, "t0", "k")
    holder = tasks(sent(hub))[0][0]
    other = b"w2" if holder == b"w1" else b"w1"
    queue = p.keyed_queue(CLS, "k")
    hub.handle(other, p.encode(p.KeyedSave(queue, b"forged")))
    assert hub.store.get_meta("keyed-state:" + queue) is None


def test_idle_is_refused_while_busy_then_stops_the_key() -> None:
    """KEYED_IDLE with a call in flight changes nothing; when idle the hub answers KEYED_STOP
    and the next call activates the key again."""
    hub = make_hub()
    worker(hub, b"w1")
    call(hub, "t0", "k")
    sent(hub)
    queue = p.keyed_queue(CLS, "k")
    hub.handle(b"w1", p.encode(p.KeyedIdle(queue)))
    assert sent(hub) == []
    done(hub, b"w1", "t0")
    hub.handle(b"w1", p.encode(p.KeyedIdle(queue)))
    assert [m for _, m in sent(hub)] == [p.KeyedStop(queue)]
    call(hub, "t1", "k")
    out = sent(hub)
    assert isinstance(out[0][1], p.KeyedActivate)
    assert tasks(out) == [(b"w1", "t1")]


def _lock(hub: HubState, who: bytes, msg: p.Message) -> str:
    hub.handle(who, p.encode(msg))
    replies = [m for _, m in sent(hub) if isinstance(m, p.Reply)]
    assert len(replies) == 1
    state: str = replies[0].state
    return state


def test_lock_is_held_by_one_owner_released_only_by_it_and_expires() -> None:
    """Acquire, refuse a second owner, refuse a release by a non-holder, free at expiry."""
    clock = FakeClock()
    hub = make_hub(clock)
    assert _lock(hub, C, p.LockAcquire("feed", "a", 10.0, 1)) == "ACQUIRED"
    assert _lock(hub, C, p.LockAcquire("feed", "b", 10.0, 2)) == "LOCKED"
    assert _lock(hub, C, p.LockRelease("feed", "b", 3)) == "NOT_HELD"
    assert _lock(hub, C, p.LockQuery("feed", 4)) == "LOCKED"
    clock.advance(10.5)
    assert _lock(hub, C, p.LockQuery("feed", 5)) == "UNLOCKED"
    assert _lock(hub, C, p.LockAcquire("feed", "b", 10.0, 6)) == "ACQUIRED"
    assert _lock(hub, C, p.LockRelease("feed", "a", 7)) == "NOT_HELD"
    assert _lock(hub, C, p.LockRelease("feed", "b", 8)) == "RELEASED"
    assert _lock(hub, C, p.LockQuery("feed", 9)) == "UNLOCKED"


def test_locks_survive_a_hub_restart() -> None:
    """The lock table is stored: a new hub on the same store still refuses another owner."""
    clock = FakeClock()
    store = MemoryStore()
    hub = make_hub(clock, store)
    assert _lock(hub, C, p.LockAcquire("x", "a", 30.0, 1)) == "ACQUIRED"
    again = make_hub(clock, store)
    assert _lock(again, C, p.LockAcquire("x", "b", 30.0, 2)) == "LOCKED"
    assert _lock(again, C, p.LockAcquire("x", "a", 30.0, 3)) == "ACQUIRED"  # same owner: extend


def test_keyed_calls_and_state_survive_a_hub_restart() -> None:
    """Calls stored before a hub restart are restored to their key, in order, and the first
    placement after it activates the key with the stored state."""
    store = MemoryStore()
    hub = make_hub(store=store)
    worker(hub, b"w1")
    call(hub, "t0", "k")
    call(hub, "t1", "k")
    hub.handle(b"w1", p.encode(p.KeyedSave(p.keyed_queue(CLS, "k"), b"saved")))
    again = make_hub(store=store)
    assert again.restore() == 2
    worker(again, b"w2")
    out = sent(again)
    assert [(w, m.state) for w, m in out if isinstance(m, p.KeyedActivate)] == [(b"w2", b"saved")]
    assert tasks(out) == [(b"w2", "t0")]
    done(again, b"w2", "t0")
    assert tasks(sent(again)) == [(b"w2", "t1")]


def test_a_revoked_queued_call_is_skipped() -> None:
    """Revoking a call waiting behind another drops it; the key goes on with the next."""
    hub = make_hub()
    worker(hub, b"w1")
    for i in range(3):
        call(hub, f"t{i}", "k")
    sent(hub)
    hub.handle(C, p.encode(p.Revoke(("t1",))))
    done(hub, b"w1", "t0")
    assert tasks(sent(hub)) == [(b"w1", "t2")]


def test_stat_of_a_waiting_call_counts_the_hosts_and_explains_it() -> None:
    """STAT of a call queued behind another names its key's queue and counts the workers
    hosting the class; the client's explanation says so."""
    from celeriac.runtime.liveness import explain_reply  # noqa: PLC0415 - runtime, this test only

    hub = make_hub()
    worker(hub, b"w1")
    call(hub, "t0", "k")
    call(hub, "t1", "k")
    sent(hub)
    hub.handle(C, p.encode(p.Stat("t1", 7)))
    reply = next(m for _, m in sent(hub) if isinstance(m, p.Reply))
    assert (reply.queue, reply.consumers) == (p.keyed_queue(CLS, "k"), 1)
    assert (
        explain_reply(reply) == f"it waits for actor {CLS!r} key 'k': its calls run one at a time"
    )
    alone = make_hub()
    call(alone, "t2", "k")
    alone.handle(C, p.encode(p.Stat("t2", 8)))
    reply = next(m for _, m in sent(alone) if isinstance(m, p.Reply))
    assert "no worker hosts" in explain_reply(reply)


def test_keys_of_a_lost_worker_are_forgotten_when_idle() -> None:
    """An idle key placed on a worker that is lost leaves nothing behind at the hub; a busy one
    moves to another host."""
    hub = make_hub()
    worker(hub, b"w1")
    call(hub, "t0", "idle")
    done(hub, b"w1", "t0")
    call(hub, "t1", "busy")
    sent(hub)
    worker(hub, b"w2")
    hub.peer_unreachable(b"w1")
    assert hub.keyed_statistics()["keys"] == 1
    assert tasks(sent(hub)) == [(b"w2", "t1")]


def test_the_lock_table_is_bounded_and_an_unreadable_one_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At MAX_LOCKS a new name is refused until expired ones are swept; a stored table that
    cannot be read is logged and started afresh, not raised."""
    from celeriac.transport.hub import locks  # noqa: PLC0415 - the bound patched here

    monkeypatch.setattr(locks, "MAX_LOCKS", 2)
    clock = FakeClock()
    store = MemoryStore()
    store.set_meta(locks.LOCKS_META_KEY, b"\xc1 not msgpack")
    hub = make_hub(clock, store)
    assert _lock(hub, C, p.LockAcquire("a", "o", 5.0, 1)) == "ACQUIRED"
    assert _lock(hub, C, p.LockAcquire("b", "o", 50.0, 2)) == "ACQUIRED"
    assert _lock(hub, C, p.LockAcquire("c", "o", 5.0, 3)) == "LOCKED"
    clock.advance(6.0)
    assert _lock(hub, C, p.LockAcquire("c", "o", 5.0, 4)) == "ACQUIRED"
    assert hub.statistics()["locks"] == 2


def _replies(hub: HubState) -> list[tuple[bytes, str, Any]]:
    return [(who, m.state, m.rid) for who, m in sent(hub) if isinstance(m, p.Reply)]


def test_blocking_acquires_wait_at_the_hub_first_come_first_served() -> None:
    """Waiters get the lock in arrival order when it is released, or when it expires (at the
    next tick); a waiter whose wait runs out is answered LOCKED; one whose peer left is
    skipped."""
    clock = FakeClock()
    hub = HubState(MemoryStore(), clock, hub_id="hub-a", heartbeat=100.0)  # nobody goes silent
    for who in (b"client", b"c1", b"c2", b"c3", b"c4"):
        hub.handle(who, p.encode(p.Hello("client", who.decode())))
    sent(hub)
    hub.handle(b"c1", p.encode(p.LockAcquire("L", "o1", 5.0, 1)))
    hub.handle(b"c2", p.encode(p.LockAcquire("L", "o2", 5.0, 2, wait=30.0)))
    hub.handle(b"c3", p.encode(p.LockAcquire("L", "o3", 5.0, 3, wait=30.0)))
    hub.handle(b"c4", p.encode(p.LockAcquire("L", "o4", 5.0, 4, wait=1.0)))
    assert _replies(hub) == [(b"c1", "ACQUIRED", 1)]
    clock.advance(1.5)
    hub.tick()
    assert _replies(hub) == [(b"c4", "LOCKED", 4)]
    hub.handle(b"c1", p.encode(p.LockRelease("L", "o1", 5)))
    assert _replies(hub) == [(b"c1", "RELEASED", 5), (b"c2", "ACQUIRED", 2)]
    clock.advance(5.0)  # o2 never releases: at expiry o3 gets it
    hub.tick()
    assert _replies(hub) == [(b"c3", "ACQUIRED", 3)]
    hub.handle(b"c4", p.encode(p.LockAcquire("L", "o4", 5.0, 6, wait=30.0)))
    hub.handle(b"c4", p.encode(p.Bye()))
    hub.handle(b"c3", p.encode(p.LockRelease("L", "o3", 7)))
    assert _replies(hub) == [(b"c3", "RELEASED", 7)]
    assert _lock(hub, C, p.LockQuery("L", 8)) == "UNLOCKED"
