"""A drained hub gives its memory back: its per-message tables are rebuilt to their size once
it is idle (a dict never shrinks on delete), and duplicates are still dropped (real SQLite)."""

from __future__ import annotations

import sys
from pathlib import Path

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hub.memory import IDLE_SECONDS, IdleRelease, shrink_containers
from celeriac.transport.hubstate import HubState
from celeriac.transport.store import SQLiteStore

C, W = b"client", b"w1"
N = 20_000


def _publish(hub: HubState, store: SQLiteStore, ids: list[str]) -> None:
    hub.handle(C, p.encode(p.Declare(queues=(p.QueueDecl("celery"),))))
    for start in range(0, len(ids), 500):
        tasks = tuple(
            p.TaskMessage(mid, "t", b"x" * 256, queue="celery") for mid in ids[start : start + 500]
        )
        hub.handle(C, p.encode(p.Publish(tasks)))
        hub.tick()
        store.commit()
    hub.outbox.clear()


def _drain(hub: HubState, store: SQLiteStore) -> int:
    """A worker acknowledges every delivery until none comes; how many it acknowledged."""
    hub.handle(W, p.encode(p.Hello("worker", "w1", queues=("celery",), credit=1000)))
    done = 0
    for _ in range(2 * N):  # bounded: at least one delivery per turn while any is queued
        acks = [
            p.ResultMessage(d.task.id, "SUCCESS", store=False, credit=1)
            for frames in hub.outbox
            if frames[0] == W and isinstance(message := p.decode(frames[1:]), p.Deliver)
            for d in message.deliveries
        ]
        hub.outbox.clear()
        if not acks:
            break
        hub.handle(W, p.encode(p.Done(tuple(acks))))
        hub.tick()
        store.commit()
        done += len(acks)
    hub.events.clear()
    return done


def test_drained_hub_tables_shrink_and_duplicates_still_drop(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    clock = FakeClock()
    hub = HubState(store, clock, hub_id="h")
    idle = IdleRelease(clock)
    idle.turn(hub)
    ids = [f"task-{i}" for i in range(N)]
    _publish(hub, store, ids)
    idle.turn(hub)  # traffic seen: the hub is busy
    assert _drain(hub, store) == N
    assert len(hub._messages) == 0
    assert len(hub._body_window) == 0
    peak = sys.getsizeof(hub._messages) + sys.getsizeof(hub._body_window)
    assert peak > 1_000_000  # tables sized for 20,000 entries, now empty
    assert not idle.turn(hub)  # traffic again (acks): not idle yet
    clock.advance(IDLE_SECONDS / 2)
    assert not idle.turn(hub)
    clock.advance(IDLE_SECONDS)
    assert idle.turn(hub)  # idle after a busy spell: memory given back, once
    assert sys.getsizeof(hub._messages) + sys.getsizeof(hub._body_window) < peak / 20
    clock.advance(10 * IDLE_SECONDS)
    assert not idle.turn(hub)
    assert shrink_containers(hub) == 0  # nothing left to rebuild
    # the ids just done are still known: publishing them again is a duplicate, not a new task
    before = hub.counters["duplicates"]
    _publish(hub, store, ids[-1000:])
    assert hub.counters["duplicates"] - before == 1000
    assert len(hub._messages) == 0
    store.close()


def test_shrinking_keeps_every_entry_and_its_order(tmp_path: Path) -> None:
    """A table rebuilt while messages are still queued keeps them all, in order."""
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    hub = HubState(store, FakeClock(), hub_id="h")
    ids = [f"task-{i}" for i in range(N)]
    _publish(hub, store, ids)
    for mid in ids[:-10]:
        del hub._messages[mid]
        hub._body_window.pop(mid, None)
    kept = list(hub._messages.items())
    window = list(hub._body_window.items())
    assert shrink_containers(hub) >= 1
    assert list(hub._messages.items()) == kept
    assert list(hub._body_window.items()) == window
    store.close()


def test_a_hub_still_holding_its_backlog_is_left_alone(tmp_path: Path) -> None:
    """Idle with most of its peak still queued: no rebuild, no collection over it."""
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    clock = FakeClock()
    hub = HubState(store, clock, hub_id="h")
    idle = IdleRelease(clock)
    idle.turn(hub)
    _publish(hub, store, [f"task-{i}" for i in range(2000)])
    idle.turn(hub)
    clock.advance(2 * IDLE_SECONDS)
    assert not idle.turn(hub)
    assert len(hub._messages) == 2000
    store.close()
