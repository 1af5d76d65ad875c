"""broker_visibility_timeout: a delivery held too long goes to another worker; off by default."""

from __future__ import annotations

from typing import Any

from celeriac import App
from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

C, SLOW, FAST = b"client", b"slow", b"fast"


def setup(timeout: float | None) -> tuple[HubState, FakeClock]:
    clock = FakeClock()
    hub = HubState(MemoryStore(), clock, hub_id="h")
    hub.visibility_timeout = timeout
    hub.handle(C, p.encode(p.Hello("client", "c", declare=p.Declare(queues=(p.QueueDecl("q"),)))))
    hub.handle(SLOW, p.encode(p.Hello("worker", "slow", queues=("q",), credit=1)))
    hub.handle(C, p.encode(p.Publish((p.TaskMessage("t1", "t", b"[]", queue="q"),))))
    hub.handle(FAST, p.encode(p.Hello("worker", "fast", queues=("q",), credit=1)))
    return hub, clock


def deliveries(hub: HubState) -> list[tuple[bytes, Any]]:
    out = [(f[0], p.decode(f[1:])) for f in hub.outbox]
    hub.outbox.clear()
    return [(who, d.task.id) for who, m in out if isinstance(m, p.Deliver) for d in m.deliveries]


def test_a_delivery_held_past_the_timeout_goes_to_another_worker() -> None:
    """After 60 s with the slow worker, t1 goes to the fast one; the late DONE is refused."""
    hub, clock = setup(60.0)
    assert deliveries(hub) == [(SLOW, "t1")]
    for _ in range(21):  # 63 s; the slow worker stays alive: it answers, it just never finishes
        clock.advance(3.0)
        hub.handle(SLOW, p.encode(p.Pong()))
        hub.handle(FAST, p.encode(p.Pong()))
        hub.tick()
    assert deliveries(hub) == [(FAST, "t1")]
    assert hub.counters["redelivered"] == 1
    late = p.ResultMessage("t1", "SUCCESS", b"1", "application/json", store=True, credit=1)
    hub.handle(SLOW, p.encode(p.Done((late,))))
    assert hub.counters["refused"] == 1
    assert hub.counters["acked"] == 0


def test_without_a_timeout_a_long_task_keeps_its_delivery() -> None:
    """The default (None): an hour later the delivery is still with its worker."""
    hub, clock = setup(None)
    assert deliveries(hub) == [(SLOW, "t1")]
    for _ in range(1200):
        clock.advance(3.0)
        hub.handle(SLOW, p.encode(p.Pong()))
        hub.handle(FAST, p.encode(p.Pong()))
        hub.tick()
    assert deliveries(hub) == []
    assert hub.counters["redelivered"] == 0


def test_the_setting_is_declared_and_off_by_default() -> None:
    """broker_visibility_timeout exists, defaults to None and takes seconds."""
    app = App("vis", environ={})
    assert app.conf.broker_visibility_timeout is None
    app.conf.broker_visibility_timeout = 3600
    assert app.conf.broker_visibility_timeout == 3600
