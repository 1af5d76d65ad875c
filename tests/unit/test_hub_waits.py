"""Waits are bounded per peer and freed when results arrive or the peer goes."""

from __future__ import annotations

from typing import Any

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hub.limits import HubLimits
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

C, W = b"client", b"worker"


def errors(hub: HubState) -> list[Any]:
    out = [p.decode(f[1:]) for f in hub.outbox]
    hub.outbox.clear()
    return [m.code for m in out if isinstance(m, p.Error)]


def test_waits_over_the_limit_are_refused_and_freed_by_results_and_bye() -> None:
    """Limit 2 (hub_max_waits_per_peer): a third WAIT gets ERR waits; a result frees one; BYE
    frees all."""
    hub = HubState(MemoryStore(), FakeClock(), hub_id="h")
    hub.apply_limits(HubLimits(max_waits=2))
    hub.handle(C, p.encode(p.Hello("client", "c", declare=p.Declare(queues=(p.QueueDecl("q"),)))))
    hub.outbox.clear()
    hub.handle(C, p.encode(p.Wait(("a", "b", "c"))))
    assert errors(hub) == ["waits"]
    assert hub.statistics()["waiters"] == 2
    hub.handle(C, p.encode(p.Wait(("a",))))  # already waiting: not counted twice
    assert errors(hub) == []
    hub.handle(W, p.encode(p.Hello("worker", "w", queues=("q",), credit=1)))
    hub.handle(C, p.encode(p.Publish((p.TaskMessage("a", "t", b"[]", queue="q"),))))
    hub.outbox.clear()
    done = p.ResultMessage("a", "SUCCESS", b"1", "application/json", store=True, credit=1)
    hub.handle(W, p.encode(p.Done((done,))))
    hub.handle(C, p.encode(p.Wait(("c",))))  # "a" arrived: room for one more
    assert errors(hub) == []
    assert hub.statistics()["waiters"] == 2
    hub.handle(C, p.encode(p.Bye()))
    assert hub.statistics()["waiters"] == 0
