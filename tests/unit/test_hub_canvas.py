"""The hub's canvas loose ends: revokes sent to the holder, expired canvas steps handed to a
worker, revoked and dead-lettered chord header tasks counted (issue 8)."""

from __future__ import annotations

import json
from typing import Any

from celeriac.transport.frames import encode
from celeriac.transport.hubstate import HubState

from .test_hubstate import W1, W2, C, done, hello, make_hub, publish, sent


def _revoke(hub: HubState, *ids: str, terminate: bool = False) -> None:
    hub.handle(C, encode(b"HELLO", {"role": "client", "node": "client"}))
    hub.handle(
        C, encode(b"REVOKE", {"ids": list(ids), "terminate": terminate, "signal": "SIGKILL"})
    )


def _publish_body(hub: HubState, tid: str, body: Any, **extra: Any) -> None:
    header = {"id": tid, "task": "t", "queue": "celery", "ct": "application/json", **extra}
    hub.handle(C, encode(b"PUB", {**header, "reply": True}, json.dumps(body).encode()))


def _ids(hub: HubState, command: bytes) -> list[tuple[bytes, Any]]:
    return [(who, m.header.get("ids") or m.header.get("id")) for who, m in sent(hub, command)]


def test_revoke_of_a_held_task_is_sent_to_its_holder_only() -> None:
    """A revoked task a worker holds: that worker (not another) is told, with terminate."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=1)
    hello(hub, W2, credit=0)
    publish(hub, "run")
    sent(hub)
    _revoke(hub, "run", "other", terminate=True)
    told = sent(hub, b"CANVAS_REVOKED")
    assert [(who, m.header["ids"], m.header["terminate"]) for who, m in told] == [
        (W1, ["run"], True)
    ]
    assert told[0][1].header["signal"] == "SIGKILL"


def test_a_revoked_task_given_back_or_lost_ends_revoked_not_redelivered() -> None:
    """The holder is lost after the revoke: the message ends REVOKED, no one else runs it."""
    hub, store, _ = make_hub()
    hello(hub, W1, credit=1)
    publish(hub, "run")
    sent(hub)
    _revoke(hub, "run")
    hub.peer_unreachable(W1)
    hello(hub, W2, credit=5)
    assert sent(hub, b"TASK") == []
    stored = store.get_result("run")
    assert stored is not None
    assert stored.state == "REVOKED"


def test_an_expired_chain_step_goes_to_a_worker_a_plain_one_does_not() -> None:
    """Expired with errbacks or later steps in its body: delivered (the worker calls them)."""
    hub, store, clock = make_hub()
    embed = {"callbacks": None, "errbacks": [{"task": "eb"}], "chain": None, "chord": None}
    _publish_body(hub, "step", [[], {}, embed], expires=clock.time() + 1)
    _publish_body(hub, "plain", [[], {}, {}], expires=clock.time() + 1)
    clock.advance(5)
    hello(hub, W1, credit=5)
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["step"]
    stored = store.get_result("plain")
    assert stored is not None
    assert stored.state == "REVOKED"


def test_unreadable_expired_body_is_ended_at_the_hub() -> None:
    """A body the hub cannot read (not JSON) is ended REVOKED at the hub as before."""
    hub, store, clock = make_hub()
    publish(hub, "odd", expires=clock.time() + 1, ct="application/x-python-serialize")
    clock.advance(5)
    hello(hub, W1, credit=5)
    assert sent(hub, b"TASK") == []
    assert store.get_result("odd") is not None


def test_a_header_task_revoked_before_it_is_published_counts_for_its_chord() -> None:
    """Revoked, then published as a chord header task: the unlock runs (error path)."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=10)
    _revoke(hub, "h1")
    publish(hub, "unlock", reply=False, chord_size=2)
    publish(hub, "h0", chord="unlock")
    publish(hub, "h1", chord="unlock")
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["h0"]
    done(hub, W1, "h0", credit=0)
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["unlock"]


def test_a_dead_lettered_header_task_counts_for_its_chord_once() -> None:
    """A header task whose workers keep being lost is dead-lettered and counted: the unlock
    runs; a dead-letter consumer acknowledging it later does not count it again."""
    hub, store, _ = make_hub(max_deliveries=1)
    publish(hub, "unlock", reply=False, chord_size=1)
    publish(hub, "h0", chord="unlock")
    hello(hub, W1, credit=1)
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["h0"]
    hub.peer_unreachable(W1)
    stored = store.get_result("h0")
    assert stored is not None
    assert stored.state == "FAILURE"
    hello(hub, W2, credit=5)
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["unlock"]
    assert hub._chord_count("unlock") == 1
    hello(hub, b"dl", credit=5, queues=["celeriac.dead_letter"])
    assert [m.header["id"] for _, m in sent(hub, b"TASK")] == ["h0"]
    done(hub, b"dl", "h0")
    assert hub._chord_count("unlock") == 1
