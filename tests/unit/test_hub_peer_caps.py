"""Per-peer caps are settings: credit (deliveries outstanding) and waits, each refused past its
limit, counted and logged once; the settings reach the hub server."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from celeriac import App
from celeriac._clock import FakeClock
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport import protocol as p
from celeriac.transport.hub.limits import HubLimits
from celeriac.transport.hubserver import HubServer
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

C, W = b"client", b"w1"
DECLARE = p.Declare(queues=(p.QueueDecl("celery"),))


def delivered(hub: HubState) -> list[str]:
    out = [p.decode(f[1:]) for f in hub.outbox]
    hub.outbox.clear()
    return [d.task.id for m in out if isinstance(m, p.Deliver) for d in m.deliveries]


def test_credit_past_the_cap_is_dropped_and_the_slot_comes_back_with_an_ack() -> None:
    """Cap 3: a HELLO asking for 10 gets 3 of 10 queued; more CRED changes nothing; each DONE
    lets exactly one more through. Counted, logged once."""
    hub = HubState(MemoryStore(), FakeClock(), hub_id="h")
    hub.apply_limits(HubLimits(max_credit=3))
    hub.handle(C, p.encode(DECLARE))
    tasks = tuple(p.TaskMessage(f"t{i}", "t", b"[]", queue="celery") for i in range(10))
    hub.handle(C, p.encode(p.Publish(tasks)))
    hub.outbox.clear()
    with capture_logs() as logs:
        hub.handle(W, p.encode(p.Hello("worker", "w1", queues=("celery",), credit=10)))
        assert delivered(hub) == ["t0", "t1", "t2"]
        for _ in range(3):
            hub.handle(W, p.encode(p.Credit(5)))
        assert delivered(hub) == []
        done = p.ResultMessage("t0", "SUCCESS", b"1", credit=1)
        hub.handle(W, p.encode(p.Done((done,))))
        assert delivered(hub) == ["t3"]
    assert hub.statistics()["peers"]["w1"] == {"role": "worker", "credit": 0, "inflight": 3}
    assert hub.counters["credit_capped"] >= 4
    capped = [e for e in logs if e["event"] == "credit_capped"]
    assert [(e["limit"], e["setting"]) for e in capped] == [(3, "hub_max_credit_per_peer")]


def test_the_caps_are_settings_with_checks(tmp_path: Path) -> None:
    """hub_max_credit_per_peer, hub_max_waits_per_peer, hub_body_window_size: checked when
    set, and handed to the hub built from the app's settings."""
    app = App(
        "caps",
        broker="inproc://caps",
        hub_max_credit_per_peer=7,
        hub_max_waits_per_peer=9,
        hub_body_window_size=0,
    )
    with pytest.raises(ImproperlyConfigured, match="hub_max_credit_per_peer"):
        app.conf.hub_max_credit_per_peer = 0
    with pytest.raises(ImproperlyConfigured, match="hub_max_waits_per_peer"):
        app.conf.hub_max_waits_per_peer = "many"
    with pytest.raises(ImproperlyConfigured, match="hub_body_window_size"):
        app.conf.hub_body_window_size = -1
    hub = HubServer.from_settings(app.conf, data_dir=tmp_path)
    thread = hub.start()
    try:
        state = hub.state
        assert (state.max_credit_per_peer, state.max_waits_per_peer) == (7, 9)
        assert state.body_window_size == 0
    finally:
        hub.stop()
    assert not thread.is_alive()
