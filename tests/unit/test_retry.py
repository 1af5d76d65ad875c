"""Retries as pure decisions (backoff, max_retries, autoretry) and the hub's in-place swap."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App
from celeriac._request import Request
from celeriac._retry import autoretry, backoff, plan_retry
from celeriac.exceptions import MaxRetriesExceededError, Retry
from celeriac.transport.frames import encode

from .test_hubstate import W1, C, hello, make_hub, publish, sent


@pytest.fixture
def app() -> App:
    """An app with a plain task and an autoretrying one."""
    a = App("retry_unit")

    @a.task(name="r.plain", max_retries=2)
    def plain() -> None: ...

    @a.task(
        name="r.auto",
        autoretry_for=(KeyError,),
        dont_autoretry_for=(ValueError,),
        retry_backoff=2,
        retry_backoff_max=10,
        retry_jitter=False,
    )
    def auto() -> None: ...

    return a


def test_backoff_doubles_caps_and_jitters() -> None:
    """factor * 2**n, capped at the maximum; jitter draws in [0, that]."""
    assert [backoff(1, n, 600, False) for n in range(4)] == [1, 2, 4, 8]
    assert backoff(1, 20, 600, False) == 600
    assert backoff(3, 2, 600, True, rand=lambda lo, hi: hi / 2) == 6


def test_plan_uses_countdown_then_eta_then_the_default(app: App) -> None:
    """countdown wins; eta otherwise; else default_retry_delay (180 s)."""
    task, req = app.tasks["r.plain"], Request(id="x", task="r.plain", args=(1,))
    assert plan_retry(task, req, 100.0, countdown=5).when == 105.0
    assert plan_retry(task, req, 100.0, eta=150.0).when == 150.0
    plan = plan_retry(task, req, 100.0)
    assert plan.when == 280.0
    assert plan.retry_args == (1,)


def test_plan_refuses_beyond_max_retries(app: App) -> None:
    """At max_retries: MaxRetriesExceededError, or exc itself when given."""
    task, req = app.tasks["r.plain"], Request(id="x", task="r.plain", retries=2)
    with pytest.raises(MaxRetriesExceededError):
        plan_retry(task, req, 0.0)
    with pytest.raises(KeyError):
        plan_retry(task, req, 0.0, exc=KeyError("k"))


def test_autoretry_only_for_listed_exceptions(app: App) -> None:
    """KeyError becomes a Retry with backoff; ValueError (not listed) stays itself."""
    task = app.tasks["r.auto"]
    req = Request(id="x", task="r.auto", retries=1)
    retry = autoretry(task, req, KeyError("k"), 0.0)
    assert isinstance(retry, Retry)
    assert retry.when == 4.0
    err = ValueError("v")
    assert autoretry(task, req, err, 0.0) is err


def test_autoretry_out_of_retries_gives_the_error(app: App) -> None:
    """After max_retries (3 by default) the task's own exception comes back."""
    err = KeyError("k")
    req = Request(id="x", task="r.auto", retries=3)
    assert autoretry(app.tasks["r.auto"], req, err, 0.0) is err


def _retry_done(tid: str, eta: float, body: bytes) -> list[bytes]:
    header: dict[str, Any] = {"id": tid, "state": "RETRY", "ct": "application/json"}
    return encode(b"DONE", {**header, "credit": 1, "store": False, "retry_eta": eta}, body)


def test_hub_swaps_the_message_for_its_next_attempt() -> None:
    """A RETRY DONE stores the same id with retries+1 and the new body, held until its eta."""
    hub, store, clock = make_hub()
    hello(hub, W1, credit=1)
    publish(hub, "a")
    sent(hub)
    hub.handle(W1, _retry_done("a", clock.time() + 5, b"[[2],{},{}]"))
    assert sent(hub, b"TASK") == []
    stored = [m for m in store.messages() if m.id == "a"]
    assert len(stored) == 1
    assert stored[0].body == b"[[2],{},{}]"
    hub.handle(C, encode(b"HELLO", {"role": "client", "node": "client"}))  # STAT needs it
    hub.handle(C, encode(b"STAT", {"id": "a", "rid": 1}))
    assert [m.header["state"] for _, m in sent(hub, b"REPLY")] == ["RETRY"]
    clock.advance(5)
    hub.tick()
    tasks = sent(hub, b"TASK")
    assert [(m.header["id"], m.header["retries"]) for _, m in tasks] == [("a", 1)]


def test_hub_ignores_a_retry_for_a_delivery_it_no_longer_holds() -> None:
    """A stale RETRY (the task already completed) stores nothing new."""
    hub, store, clock = make_hub()
    hello(hub, W1, credit=1)
    hub.handle(W1, _retry_done("gone", clock.time(), b"[[],{},{}]"))
    assert list(store.messages()) == []
