"""A publisher that takes a RES as its confirmation (HELLO ``results_confirm``) gets no CONF for
a task whose result it waits for when the RES comes within CONFIRM_HOLD; the CONF of one still
running leaves later, never before the commit; a failed commit refuses what was held
(transport/hub/confirmhold.py)."""

from __future__ import annotations

from typing import Any

from celeriac._clock import FakeClock
from celeriac.transport.frames import decode, encode
from celeriac.transport.hub.confirmhold import CONFIRM_HOLD, ConfirmHold
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

from .test_hubstate import W1, done, hello, publish, queue_decl

C = b"client"


def make_hub(*, results_confirm: bool) -> tuple[HubState, FakeClock]:
    clock = FakeClock()
    hub = HubState(MemoryStore(), clock, hub_id="hub-a")
    decl = {"exchanges": [], "queues": [queue_decl("celery")]}
    hub.handle(
        C,
        encode(
            b"HELLO",
            {"role": "client", "node": "c", "declare": decl, "results_confirm": results_confirm},
        ),
    )
    hello(hub, W1, credit=10)
    hub.outbox.clear()
    return hub, clock


def sent(hub: HubState) -> list[tuple[bytes, bytes, Any]]:
    out = [(f[0], f[2], decode(f[1:])) for f in hub.outbox]
    hub.outbox.clear()
    return out


def turn(hub: HubState, clock: FakeClock) -> list[tuple[bytes, bytes, Any]]:
    """The end of a loop turn as HubServer runs it: tick, commit, held confirmations due."""
    hub.tick()
    hub.confirm_hold.committed(clock.monotonic())
    hub.release_confirms(clock.monotonic())
    return sent(hub)


def commands(out: list[tuple[bytes, bytes, Any]], who: bytes) -> list[bytes]:
    return [cmd for i, cmd, _ in out if i == who]


def test_a_result_within_the_hold_confirms_the_publish_and_no_conf_leaves() -> None:
    hub, clock = make_hub(results_confirm=True)
    publish(hub, "a")
    assert commands(turn(hub, clock), C) == []  # held: the client waits for its result
    clock.advance(CONFIRM_HOLD / 2)
    done(hub, W1, "a")
    assert commands(turn(hub, clock), C) == [b"RES"]  # the RES confirms it
    clock.advance(CONFIRM_HOLD * 10)
    assert commands(turn(hub, clock), C) == []  # nothing left to confirm
    assert hub.confirm_hold.deadline() is None


def test_a_task_still_running_is_confirmed_once_the_hold_is_over() -> None:
    hub, clock = make_hub(results_confirm=True)
    publish(hub, "a")
    assert commands(turn(hub, clock), C) == []
    deadline = hub.confirm_hold.deadline()
    assert deadline == clock.monotonic() + CONFIRM_HOLD  # the loop wakes for it
    clock.advance(CONFIRM_HOLD)
    out = turn(hub, clock)
    assert [(cmd, m.header["ids"]) for i, cmd, m in out if i == C] == [(b"CONF", ["a"])]


def test_held_ids_leave_with_anything_else_for_that_client() -> None:
    """A RES for another task (or any message) to the client takes the held CONF along."""
    hub, clock = make_hub(results_confirm=True)
    publish(hub, "a")
    publish(hub, "b")
    assert commands(turn(hub, clock), C) == []
    done(hub, W1, "a")
    out = turn(hub, clock)
    assert commands(out, C) == [b"RES", b"CONF"]
    assert [m.header["ids"] for i, cmd, m in out if cmd == b"CONF"] == [["b"]]


def test_a_client_that_did_not_say_so_is_confirmed_at_once() -> None:
    hub, clock = make_hub(results_confirm=False)
    publish(hub, "a")
    assert commands(turn(hub, clock), C) == [b"CONF"]


def test_a_publish_without_reply_is_confirmed_at_once() -> None:
    hub, clock = make_hub(results_confirm=True)
    publish(hub, "a", reply=False)
    assert commands(turn(hub, clock), C) == [b"CONF"]


def test_a_failed_commit_refuses_what_it_would_have_held() -> None:
    hub, clock = make_hub(results_confirm=True)
    publish(hub, "a")
    hub.tick()  # the turn's confirmations: held (not committed yet)
    assert hub.confirm_hold
    hub.commit_failed(OSError("disk full"))
    out = sent(hub)
    assert [(cmd, m.header["id"]) for i, cmd, m in out if i == C] == [(b"NACK", "a")]
    hub.confirm_hold.committed(clock.monotonic())  # a later commit holds nothing of it
    clock.advance(CONFIRM_HOLD)
    hub.release_confirms(clock.monotonic())
    assert commands(sent(hub), C) == []


def test_confirm_hold_alone() -> None:
    hold = ConfirmHold()
    assert not hold
    hold.defer(C, ["a", "b"])
    hold.answered(C, "a")  # its RES went in the same turn: never held
    hold.committed(0.0)
    assert hold.due(0.0, busy=()) == []
    assert hold.due(0.0, busy=(C,)) == [(C, ["b"])]
    hold.defer(C, ["c"])
    assert hold.failed() == {C: ["c"]}
    hold.committed(1.0)
    assert not hold
    hold.defer(C, ["d"])
    hold.committed(1.0)
    assert hold.due(1.0 + CONFIRM_HOLD / 2, busy=()) == []
    assert hold.due(1.0, busy=None) == [(C, ["d"])]  # the hub stops: everything
