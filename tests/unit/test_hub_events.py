"""Hub events (PUB topics with Celery's names) and STARTED tracking, on the sans-IO state."""

from __future__ import annotations

from typing import Any

import msgpack

from celeriac._clock import FakeClock
from celeriac.transport.frames import decode, encode
from celeriac.transport.hubserver import events_url
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

W, C = b"w1", b"client"


def make_hub() -> HubState:
    hub = HubState(MemoryStore(), FakeClock(), hub_id="hub")
    queue = {"name": "celery", "max_priority": None, "bindings": []}
    hub.handle(C, encode(b"DECLARE", {"exchanges": [], "queues": [queue]}))
    hub.handle(C, encode(b"HELLO", {"role": "client", "node": "c"}))  # STAT needs a HELLO
    hub.handle(
        W, encode(b"HELLO", {"role": "worker", "node": "w1", "credit": 1, "queues": ["celery"]})
    )
    return hub


def topics(hub: HubState) -> list[tuple[bytes, dict[str, Any]]]:
    out = [(t, msgpack.unpackb(h)) for t, h in hub.events]
    hub.events.clear()
    return out


def stat(hub: HubState, tid: str) -> str:
    hub.outbox.clear()
    hub.handle(C, encode(b"STAT", {"rid": 1, "id": tid}))
    return str(decode(hub.outbox[-1][1:]).header["state"])


def test_worker_online_offline_events() -> None:
    """A worker joining and leaving is published as worker-online / worker-offline."""
    hub = make_hub()
    hub.peer_unreachable(W)
    got = topics(hub)
    assert [t for t, _ in got] == [b"worker-online", b"worker-offline"]
    assert got[0][1]["hostname"] == "w1"


def test_task_started_then_succeeded_and_state_reports_started() -> None:
    """START marks the task STARTED (for STAT) and publishes task-started; DONE task-succeeded."""
    hub = make_hub()
    topics(hub)
    hub.handle(C, encode(b"PUB", {"id": "t1", "queue": "celery"}))
    assert stat(hub, "t1") == "RECEIVED"
    hub.handle(W, encode(b"START", {"id": "t1"}))
    assert stat(hub, "t1") == "STARTED"
    hub.handle(W, encode(b"DONE", {"id": "t1", "state": "SUCCESS", "ct": "x"}))
    got = topics(hub)
    assert [t for t, _ in got] == [b"task-started", b"task-succeeded"]
    assert [h["id"] for _, h in got] == ["t1", "t1"]
    assert stat(hub, "t1") == "SUCCESS"


def test_task_started_then_failed_publishes_task_failed() -> None:
    """A DONE with state FAILURE after START publishes task-failed, and STAT reads FAILURE."""
    hub = make_hub()
    topics(hub)
    hub.handle(C, encode(b"PUB", {"id": "t1", "queue": "celery"}))
    hub.handle(W, encode(b"START", {"id": "t1"}))
    hub.handle(W, encode(b"DONE", {"id": "t1", "state": "FAILURE", "ct": "x"}))
    assert [t for t, _ in topics(hub)] == [b"task-started", b"task-failed"]
    assert stat(hub, "t1") == "FAILURE"


def test_events_url_is_next_port_or_suffix() -> None:
    """Events listen on the broker port + 1 (tcp) or a .events sibling (ipc, inproc)."""
    assert events_url("tcp://127.0.0.1:5555") == "tcp://127.0.0.1:5556"
    assert events_url("tcp://127.0.0.1:*") == "tcp://127.0.0.1:*"
    assert events_url("ipc:///tmp/hub") == "ipc:///tmp/hub.events"
