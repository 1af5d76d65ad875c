"""Revocations at the hub: queued messages removed, later ones refused, kept across restarts."""

from __future__ import annotations

from typing import Any

from celeriac._clock import FakeClock
from celeriac.transport.frames import encode
from celeriac.transport.hubstate import HubState

from .test_hubstate import W1, C, declare, hello, make_hub, publish, queue_decl, sent


def _introduce(hub: HubState) -> None:
    """The client says HELLO first: REVOKE and STAT need it (hub ownership rules)."""
    hub.handle(C, encode(b"HELLO", {"role": "client", "node": "client"}))


def _revoke(hub: HubState, *ids: str) -> None:
    _introduce(hub)
    hub.handle(C, encode(b"REVOKE", {"ids": list(ids), "terminate": False}))


def _state(hub: HubState, tid: str) -> str:
    _introduce(hub)
    hub.handle(C, encode(b"STAT", {"id": tid, "rid": 7}))
    replies = sent(hub, b"REPLY")
    return str(replies[-1][1].header["state"])


def test_revoke_removes_a_queued_message_and_stores_revoked() -> None:
    """A queued message is removed at once; its state is REVOKED; no worker gets it."""
    hub, store, _ = make_hub()
    publish(hub, "a")
    _revoke(hub, "a")
    assert list(store.messages()) == []
    assert _state(hub, "a") == "REVOKED"
    hello(hub, W1, credit=5)
    assert sent(hub, b"TASK") == []


def test_revoke_removes_a_delayed_message() -> None:
    """A message waiting for its eta is removed too and never delivered when due."""
    hub, store, clock = make_hub()
    hello(hub, W1, credit=5)
    publish(hub, "later", eta=clock.time() + 10)
    _revoke(hub, "later")
    clock.advance(11)
    hub.tick()
    assert sent(hub, b"TASK") == []
    assert list(store.messages()) == []


def test_a_message_published_after_its_revoke_is_never_queued() -> None:
    """Revoke first, publish later (a chain step): confirmed, REVOKED, not delivered."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=5)
    _revoke(hub, "future")
    assert _state(hub, "future") == "REVOKED"
    publish(hub, "future")
    assert sent(hub, b"TASK") == []
    hub.tick()
    assert [m.header["ids"] for _, m in sent(hub, b"CONF")] == [["future"]]


def test_running_message_is_left_to_finish() -> None:
    """A delivered message stays with its worker (which is told: see test_hub_canvas)."""
    hub, store, _ = make_hub()
    hello(hub, W1, credit=5)
    publish(hub, "run")
    sent(hub)
    _revoke(hub, "run")
    assert [m.id for m in store.messages()] == ["run"]


def test_revocations_survive_a_hub_restart(open_store: Any) -> None:
    """Reopened from its store, the hub still refuses a revoked id published after the restart."""
    clock = FakeClock()
    store = open_store()
    hub = HubState(store, clock, hub_id="hub-a")
    declare(hub, queues=[queue_decl("celery")])
    _revoke(hub, "x")
    hub.tick()
    store.close()
    store2 = open_store()
    hub2 = HubState(store2, clock, hub_id="hub-b")
    hub2.restore()
    hello(hub2, W1, credit=5)
    publish(hub2, "x")
    assert sent(hub2, b"TASK") == []
    assert _state(hub2, "x") == "REVOKED"
    store2.close()
