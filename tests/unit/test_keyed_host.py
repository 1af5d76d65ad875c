"""A worker's keyed actors without sockets: calls, failures, hook supervision, idle keys."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from structlog.testing import capture_logs

from celeriac import signals
from celeriac._clock import FakeClock
from celeriac.actors.keyed import KeyedHost
from celeriac.actors.outcome import TaskOutcome
from celeriac.transport import protocol as p

NAME = "t.Box"
Reports = queue.Queue[tuple[str, TaskOutcome, bytes | None]]


class Box:
    """A keyed actor whose hooks fail on demand (class attributes set by each test)."""

    init_failures = 0
    save_fails = False

    def __init__(self, key: str) -> None:
        if Box.init_failures > 0:
            Box.init_failures -= 1
            raise RuntimeError("constructor failed")
        self.items: list[Any] = []

    def put(self, item: Any) -> int:
        self.items.append(item)
        return len(self.items)

    def boom(self) -> None:
        raise ValueError("boom")

    def _secret(self) -> str:
        return "no"

    def save_state(self) -> Any:
        if Box.save_fails:
            raise OSError("cannot save")
        return self.items

    def load_state(self, state: Any) -> None:
        self.items = list(state)


@pytest.fixture
def host() -> Iterator[tuple[KeyedHost, Reports, FakeClock]]:
    reports: Reports = queue.Queue()
    clock = FakeClock()
    Box.init_failures, Box.save_fails = 0, False
    host = KeyedHost(
        {NAME: Box},
        lambda q, outcome, state: reports.put((q, outcome, state)),
        accept=frozenset({"application/json"}),
        serializer="json",
        idle_timeout=10.0,
        clock=clock,
    )
    yield host, reports, clock
    host.stop_all()


def send(host: KeyedHost, tid: str, method: str, *args: Any, key: str = "k") -> None:
    body = json.dumps([list(args), {}, {}]).encode()
    task = p.TaskMessage(tid, f"{NAME}.{method}", body, queue=p.keyed_queue(NAME, key))
    assert host.deliver(p.Delivery(task, task.queue))


def outcome(reports: Reports) -> tuple[TaskOutcome, Any, Any]:
    _, out, state = reports.get(timeout=10)
    value = json.loads(out.body)
    return out, value, None if state is None else msgpack.unpackb(state)


def test_calls_run_in_order_and_save_state_each_time(host: Any) -> None:
    """Each call's result and the state saved after it come back, in order."""
    h, reports, _ = host
    for i in range(3):
        send(h, f"t{i}", "put", i)
    results = [outcome(reports) for _ in range(3)]
    assert [(o.task_id, v, s) for o, v, s in results] == [
        ("t0", 1, [0]),
        ("t1", 2, [0, 1]),
        ("t2", 3, [0, 1, 2]),
    ]


def test_a_raising_method_is_a_failure_and_the_instance_lives(host: Any) -> None:
    """boom() fails like a task; the next call sees the state from before."""
    h, reports, _ = host
    send(h, "a", "put", "x")
    outcome(reports)
    send(h, "b", "boom")
    failed, info, _ = outcome(reports)
    assert failed.state == "FAILURE"
    assert info["exc_type"] == "ValueError"
    send(h, "c", "put", "y")
    assert outcome(reports)[1] == 2


def test_private_names_are_not_reachable(host: Any) -> None:
    """A task naming a private method fails without calling it."""
    h, reports, _ = host
    send(h, "a", "_secret")
    failed, info, _ = outcome(reports)
    assert failed.state == "FAILURE"
    assert info["exc_type"] == "AttributeError"


def test_activation_state_is_loaded_and_constructor_failures_are_restarted(host: Any) -> None:
    """The constructor fails twice: the supervisor restarts it (actor_failed each time), then the
    instance gets the activation state through load_state."""
    h, reports, _ = host
    failed: list[dict[str, Any]] = []
    started: list[Any] = []

    def on_failed(sender: Any, **kw: Any) -> None:
        failed.append(kw)

    def on_started(sender: Any, **kw: Any) -> None:
        started.append(kw["instance"])

    signals.actor_failed.connect(on_failed)
    signals.actor_started.connect(on_started)
    try:
        Box.init_failures = 2
        h.activate(p.keyed_queue(NAME, "k"), msgpack.packb(["old"]))
        send(h, "a", "put", "new")
        out, value, state = outcome(reports)
    finally:
        signals.actor_failed.disconnect(on_failed)
        signals.actor_started.disconnect(on_started)
    assert (out.state, value, state) == ("SUCCESS", 2, ["old", "new"])
    assert [f["hook"] for f in failed] == ["__init__", "__init__"]
    assert len(started) == 1


def test_a_constructor_that_keeps_failing_fails_the_call(host: Any) -> None:
    """Past the restart intensity the call fails with the constructor's error; the next call
    tries again."""
    h, reports, _ = host
    Box.init_failures = 100
    send(h, "a", "put", 1)
    failed, info, _ = outcome(reports)
    assert failed.state == "FAILURE"
    assert info["exc_message"] == ["constructor failed"]
    Box.init_failures = 0
    send(h, "b", "put", 1)
    assert outcome(reports)[1] == 1


def test_a_failing_save_state_fails_the_call_and_restarts_from_the_last_state(
    host: Any,
) -> None:
    """save_state raising: the call fails (its effect is not durable); the instance is rebuilt
    from the last state saved."""
    h, reports, _ = host
    send(h, "a", "put", "kept")
    outcome(reports)
    Box.save_fails = True
    send(h, "b", "put", "lost")
    failed, info, state = outcome(reports)
    assert (failed.state, info["exc_type"], state) == ("FAILURE", "OSError", None)
    Box.save_fails = False
    send(h, "c", "put", "again")
    assert outcome(reports)[2] == ["kept", "again"]


def test_idle_keys_are_reported_after_the_timeout(host: Any) -> None:
    """A key with no call for idle_timeout is reported once per timeout; a busy one never."""
    h, reports, clock = host
    send(h, "a", "put", 1)
    outcome(reports)
    assert h.idle() == []
    clock.advance(10.0)
    assert h.idle() == [p.keyed_queue(NAME, "k")]
    assert h.idle() == []
    h.stop(p.keyed_queue(NAME, "k"))
    clock.advance(100.0)
    assert h.idle() == []


def test_a_class_not_hosted_here_is_refused(host: Any) -> None:
    """A delivery for an unknown class is not taken."""
    h, _, _ = host
    task = p.TaskMessage("x", "other.Cls.m", b"[[],{},{}]", queue=p.keyed_queue("other.Cls", "k"))
    assert not h.deliver(p.Delivery(task, task.queue))


class Slow:
    """A keyed actor whose ``hold`` blocks until the test releases it."""

    release = threading.Event()

    def __init__(self, key: str) -> None:
        self.key = key

    def hold(self) -> str:
        Slow.release.wait(10)
        return self.key

    def ping(self) -> str:
        return self.key


def test_over_the_cap_the_least_recently_used_idle_key_is_offered_back(host: Any) -> None:
    """Issue 16: at max_instances, a new key is admitted and the least recently used idle one
    is named for eviction (once); a call to it takes it off the list; stop() says evicted."""
    h, reports, clock = host
    h.max_instances = 2
    q = {k: p.keyed_queue(NAME, k) for k in "abcd"}
    for k in "ab":
        assert h.admit(q[k]) == (True, None)
        send(h, k, "put", k, key=k)
        outcome(reports)
        clock.advance(1.0)
    assert h.admit(q["a"]) == (True, None)  # live already: no room needed
    assert h.admit(q["c"]) == (True, q["a"])  # "a" was used least recently
    send(h, "c", "put", "c", key="c")
    outcome(reports)
    assert h.admit(q["d"]) == (True, q["b"])  # "a" is already offered: the next one
    send(h, "a2", "put", "again", key="a")  # a call came for "a": it stays
    outcome(reports)
    assert h.statistics()["evicting"] == 1
    with capture_logs() as logs:
        h.stop(q["b"])
    assert [e["reason"] for e in logs if e["event"] == "actor_stopped"] == ["evicted"]
    assert h.statistics() == {"instances": 2, "running": 0, "evicting": 0}


def test_a_new_key_is_refused_when_every_instance_is_busy() -> None:
    """Nothing idle to evict: admit says no (the runtime rejects the call with the reason)."""
    reports: Reports = queue.Queue()
    name = "t.Slow"
    host = KeyedHost(
        {name: Slow},
        lambda q, outcome, state: reports.put((q, outcome, state)),
        accept=frozenset({"application/json"}),
        serializer="json",
        idle_timeout=10.0,
        clock=FakeClock(),
        max_instances=2,
    )
    Slow.release.clear()
    try:
        for key in ("x", "y"):
            task = p.TaskMessage(key, f"{name}.hold", b"[[],{},{}]", queue=p.keyed_queue(name, key))
            assert host.deliver(p.Delivery(task, task.queue))
        assert host.admit(p.keyed_queue(name, "z")) == (False, None)
        Slow.release.set()
        for _ in range(2):
            reports.get(timeout=10)
        assert host.admit(p.keyed_queue(name, "z"))[0]
    finally:
        Slow.release.set()
        host.stop_all()
