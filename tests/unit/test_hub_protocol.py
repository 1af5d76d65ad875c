"""The hub on typed messages: a bad peer is distrusted, a bug in the hub is logged as the hub's."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

W, C = b"w1", b"client"


def make_hub() -> HubState:
    hub = HubState(MemoryStore(), FakeClock(), hub_id="hub-a")
    hub.handle(C, p.encode(p.Declare(queues=(p.QueueDecl("celery"),))))
    return hub


def hello_worker(hub: HubState, credit: int = 1) -> None:
    hub.handle(W, p.encode(p.Hello("worker", "w1", queues=("celery",), credit=credit)))


def publish(hub: HubState, *ids: str) -> None:
    tasks = tuple(p.TaskMessage(i, "t", b"[[],{},{}]", queue="celery", reply=True) for i in ids)
    hub.handle(C, p.encode(p.Publish(tasks)))


def take(hub: HubState, kind: type) -> list[tuple[bytes, Any]]:
    out = [(f[0], p.decode(f[1:])) for f in hub.outbox]
    hub.outbox.clear()
    return [(who, m) for who, m in out if isinstance(m, kind)]


@pytest.mark.parametrize(
    "header",
    [
        {"id": ["a", "list"]},  # STAT with a list for an id used to kill the hub
        {"id": "x", "rid": math.inf},
    ],
)
def test_wrong_typed_stat_is_counted_and_distrusted(header: dict[str, Any]) -> None:
    """A STAT with a list for an id or an infinite rid is a bad frame: counted, peer distrusted."""
    hub = make_hub()
    hub.handle(C, [p.TAG, b"STAT", msgpack.packb(header), b""])
    assert hub.counters["bad_frames"] == 1
    assert [m.code for _, m in take(hub, p.Error)] == ["distrusted"]
    hub.handle(C, p.encode(p.Stat("x", 1)))
    assert take(hub, p.Reply) == []  # later messages from it are dropped


def test_hello_with_infinite_credit_is_distrusted_and_the_hub_goes_on() -> None:
    """``credit=inf`` in HELLO is refused as a bad frame; other peers are still served."""
    hub = make_hub()
    hub.handle(W, [p.TAG, b"HELLO", msgpack.packb({"role": "worker", "credit": math.inf}), b""])
    assert hub.counters["bad_frames"] == 1
    publish(hub, "a")
    hub.handle(b"w2", p.encode(p.Hello("worker", "w2", queues=("celery",), credit=1)))
    assert [(who, d.deliveries[0].task.id) for who, d in take(hub, p.Deliver)] == [(b"w2", "a")]


def test_a_command_only_the_hub_sends_distrusts_the_peer() -> None:
    """A peer sending TASK or WELCOME to the hub is confused: distrusted, not a hub bug."""
    hub = make_hub()
    hub.handle(C, p.encode(p.Welcome("x", 1.0)))
    assert hub.counters["bad_frames"] == 1
    assert hub.counters["internal_errors"] == 0


def test_a_bug_in_a_handler_is_logged_as_the_hubs_and_not_blamed_on_the_peer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A KeyError inside the hub's own code is hub_internal_error with a traceback; the peer
    stays trusted and the hub keeps serving it."""
    hub = make_hub()
    hello_worker(hub, credit=2)

    def broken(task: p.TaskMessage) -> list[str]:
        raise KeyError("a bug in the hub")

    monkeypatch.setattr(hub, "_route", broken)
    with capture_logs() as logs:
        publish(hub, "a")
    (entry,) = [e for e in logs if e["event"] == "hub_internal_error"]
    assert entry["log_level"] == "error"
    assert entry["exc_info"] is True
    assert entry["command"] == "PUB"
    assert hub.counters["internal_errors"] == 1
    assert hub.counters["bad_frames"] == 0
    assert take(hub, p.Error) == []
    monkeypatch.undo()
    publish(hub, "b")
    assert [d.deliveries[0].task.id for _, d in take(hub, p.Deliver)] == ["b"]


def test_a_batch_of_publishes_and_outcomes_is_handled_item_by_item() -> None:
    """One PUB with many tasks and one DONE with many results work like single ones."""
    hub = make_hub()
    hello_worker(hub, credit=3)
    publish(hub, "a", "b", "c")
    assert [d.deliveries[0].task.id for _, d in take(hub, p.Deliver)] == ["a", "b", "c"]
    results = tuple(p.ResultMessage(i, "SUCCESS", b"1", credit=1) for i in "abc")
    hub.handle(W, p.encode(p.Done(results)))
    assert sorted(r.results[0].id for _, r in take(hub, p.Result)) == ["a", "b", "c"]
    hub.tick()
    assert [c.ids for _, c in take(hub, p.Confirm)] == [("a", "b", "c")]
    assert hub.statistics()["peers"]["w1"]["credit"] == 3


def test_the_hub_forwards_a_task_header_byte_for_byte() -> None:
    """What the worker receives is the header the client sent, not a re-encoding."""
    hub = make_hub()
    hello_worker(hub)
    frames = p.encode(p.Publish((p.TaskMessage("a", "t", b"x", queue="celery", eta=1.5),)))
    hub.handle(C, frames)
    out = hub.outbox[-1]
    assert out[0] == W
    assert out[3:5] == frames[2:4]


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=40), max_size=6), st.sampled_from(sorted(p.COMMANDS)))
def test_no_input_raises_out_of_the_hub(junk: list[bytes], command: bytes) -> None:
    """Whatever a peer sends, handle() returns, and no hub bug is logged for it."""
    hub = make_hub()
    hello_worker(hub)
    hub.handle(W, [p.TAG, command, *junk])
    hub.handle(C, junk)
    assert hub.counters["internal_errors"] == 0
