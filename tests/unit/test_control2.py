"""Remote control, second pass (issue 9), without sockets: fixed-size pools refuse to grow
with a clear error, and a prefork parent's answers built from its children's."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest

from celeriac import App
from celeriac.runtime.control import Panel
from celeriac.runtime.prefork_control import CHILD_WAIT, PreforkView
from celeriac.runtime.worker_control import WorkerView
from celeriac.transport import protocol as p


@pytest.mark.parametrize("pool", ["threads", "solo", "asyncio"])
def test_fixed_size_pools_say_they_cannot_grow(pool: str) -> None:
    """pool_grow, pool_shrink and autoscale on a threads/solo/asyncio node answer an error
    naming the pool and what does grow (as Celery's threads pool refuses), never a crash."""
    app = App("fixed")
    node = SimpleNamespace(app=app, hostname="w@x", conf=app.conf, pool_name=pool)
    view: Any = WorkerView(node, SimpleNamespace())  # type: ignore[arg-type]
    panel = Panel()
    for command, arguments in (("pool_grow", {"n": 1}), ("pool_shrink", {"n": 1})):
        answer = panel.handle(view, command, arguments)
        assert answer == {
            "error": f"NotImplementedError: the {pool} pool has a fixed size; "
            "-P prefork grows and shrinks"
        }
    answer = panel.handle(view, "autoscale", {"max": 4, "min": 1})
    assert f"the {pool} pool has a fixed size and does not autoscale" in answer["error"]
    assert "--autoscale" in answer["error"]


class _Conn:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)


def _prefork(children: int) -> tuple[PreforkView, list[p.Message]]:
    app = App("pf")
    out: list[p.Message] = []
    slots = [
        SimpleNamespace(index=i, conn=_Conn(), ready=True, task=None, pid=100 + i)
        for i in range(children)
    ]
    node = SimpleNamespace(
        app=app,
        hostname="p@x",
        conf=app.conf,
        options=SimpleNamespace(queues=None, exclude_queues=None),
        panel=Panel(),
        _slots=slots,
        _send=out.append,
    )
    return PreforkView(node), out  # type: ignore[arg-type]


def _answer(out: list[p.Message]) -> Any:
    (reply,) = out
    assert isinstance(reply, p.ControlReply)
    assert reply.node == "p@x"
    return msgpack.unpackb(reply.body, raw=False)


def test_a_prefork_parent_replies_once_its_children_answered() -> None:
    """``active`` goes to every ready child; the reply, under the node's name, comes when the
    last child answered, with each child's requests (their args included)."""
    view, out = _prefork(2)
    assert view.ask_children(p.ControlCommand("r1", "active", {}))
    asked = [slot.conn.sent for slot in view.node._slots]
    assert [m[0][:3] for m in asked] == [("ask", 1, "active")] * 2
    view.child_answer(0, 1, [{"id": "a", "args": [1], "hostname": "p@x/0"}])
    assert out == []
    view.child_answer(1, 1, [])
    assert _answer(out) == [{"id": "a", "args": [1], "hostname": "p@x"}]
    view.child_answer(1, 1, [{"id": "late"}])  # after the reply: ignored
    assert len(out) == 1
    assert not view.ask_children(p.ControlCommand("r2", "ping", {}))


def test_a_silent_child_does_not_hold_the_reply() -> None:
    """Past CHILD_WAIT the parent replies with what it has; a child that did not answer still
    shows the task it runs, as the parent knows it (no args)."""
    view, out = _prefork(2)
    view.node._slots[1].task = SimpleNamespace(id="b", name="t.b", since=time.monotonic())
    assert view.ask_children(p.ControlCommand("r", "query_task", {"ids": ["a", "b"]}))
    view.child_answer(0, 1, {"a": ["reserved", {"id": "a", "args": [2]}]})
    view.answer_due(time.monotonic())
    assert out == []
    view.answer_due(time.monotonic() + CHILD_WAIT + 0.1)
    answer = _answer(out)
    assert answer["a"] == ["reserved", {"id": "a", "args": [2], "hostname": "p@x"}]
    assert answer["b"][0] == "active"
    assert answer["b"][1]["args"] is None
    assert answer["b"][1]["worker_pid"] == 101


def test_no_ready_child_answers_at_once() -> None:
    """A node with no ready child replies at once (an empty list), never waits."""
    view, out = _prefork(1)
    view.node._slots[0].ready = False
    assert view.ask_children(p.ControlCommand("r", "reserved", {}))
    assert _answer(out) == []


def _events_hub() -> tuple[Any, Any]:
    from celeriac._clock import FakeClock  # noqa: PLC0415 - only the hub tests need these
    from celeriac.transport.frames import encode  # noqa: PLC0415
    from celeriac.transport.hubstate import HubState  # noqa: PLC0415
    from celeriac.transport.store_memory import MemoryStore  # noqa: PLC0415

    hub = HubState(MemoryStore(), FakeClock(), hub_id="hub")
    queue = {"name": "celery", "max_priority": None, "bindings": []}
    hub.handle(b"c", encode(b"DECLARE", {"exchanges": [], "queues": [queue]}))
    hub.handle(b"c", encode(b"HELLO", {"role": "client", "node": "c"}))
    hello = {"role": "worker", "node": "w1", "pid": 4242, "credit": 2, "queues": ["celery"]}
    hub.handle(b"w", encode(b"HELLO", hello))
    return hub, encode


def _published(hub: Any) -> list[tuple[bytes, dict[str, Any]]]:
    out = [(t, msgpack.unpackb(h)) for t, h in hub.events]
    hub.events.clear()
    return out


def test_the_hub_publishes_no_copy_of_an_event_the_worker_sent() -> None:
    """With -E the worker's task-started/-succeeded come first; the hub's own copies are then
    not published (one per event on the wire). Without -E the hub's copies are the events."""
    hub, encode = _events_hub()
    (online,) = _published(hub)
    assert online[0] == b"worker-online"
    fields = online[1]
    assert (fields["hostname"], fields["pid"], fields["sw_ident"]) == ("w1", 4242, "celeriac")
    assert fields["sw_ver"]
    assert fields["sw_sys"]
    assert fields["freq"] == hub.heartbeat
    for tid, worker_sends in (("t1", True), ("t2", False)):
        hub.handle(b"c", encode(b"PUB", {"id": tid, "queue": "celery"}))
        if worker_sends:
            hub.handle(b"w", p.encode(p.EventBatch(({"type": "task-started", "uuid": tid},))))
        hub.handle(b"w", encode(b"START", {"id": tid}))
        if worker_sends:
            done = {"type": "task-succeeded", "uuid": tid, "result": "3"}
            hub.handle(b"w", p.encode(p.EventBatch((done,))))
        hub.handle(b"w", encode(b"DONE", {"id": tid, "state": "SUCCESS", "ct": "x"}))
        got = [(t, e.get("uuid", e.get("id"))) for t, e in _published(hub)]
        assert got == [(b"task-started", tid), (b"task-succeeded", tid)]
    assert not hub.worker_sent  # every mark was matched
