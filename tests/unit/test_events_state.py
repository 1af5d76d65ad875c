"""The in-memory event State: task states never go back, counts by state and worker."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from celeriac.events import State
from celeriac.runtime.events import normalize

LIFE = ["task-sent", "task-received", "task-started", "task-succeeded"]


def test_a_tasks_life_ends_in_success_with_its_fields() -> None:
    """Events in order build the task: name, host, result, runtime."""
    state = State()
    for kind in LIFE:
        state.event({"type": kind, "uuid": "t", "name": "add", "timestamp": 1.0})
    state.event({"type": "task-succeeded", "uuid": "t", "result": "4", "runtime": 0.1})
    task = state.tasks["t"]
    assert (task.state, task.name, task.result, task.runtime) == ("SUCCESS", "add", "4", 0.1)
    assert state.task_count == 1
    assert state.event_count == 5


@given(st.permutations(LIFE))
def test_any_order_of_a_life_ends_in_the_final_state(order: list[str]) -> None:
    """Out of order (a late task-started after the outcome) the final state stays."""
    state = State()
    for kind in order:
        state.event({"type": kind, "uuid": "t"})
    assert state.tasks["t"].state == "SUCCESS"


def test_workers_heartbeat_and_go_offline() -> None:
    """worker-heartbeat fills the worker; worker-offline marks it not alive."""
    state = State()
    state.event({"type": "worker-heartbeat", "hostname": "w", "active": 2, "processed": 9})
    assert state.workers["w"].alive
    assert state.workers["w"].processed == 9
    state.event({"type": "worker-offline", "hostname": "w"})
    assert state.alive_workers() == []


def test_the_hubs_own_events_are_normalised() -> None:
    """A hub event (result header) becomes Celery's map, marked as the hub's."""
    event = normalize(b"task-failed", msgpack.packb({"id": "t", "state": "FAILURE"}))
    assert event is not None
    assert (event["type"], event["uuid"], event["hub"]) == ("task-failed", "t", True)
    assert normalize(b"x", b"\xc1") is None
    assert normalize(b"worker-online", msgpack.packb({"hostname": "p@x/1"})) is None
    online = normalize(b"worker-online", msgpack.packb({"hostname": "w@x"}))
    assert online is not None
    assert online["hostname"] == "w@x"
