"""Waits are bounded per peer and freed when results arrive or the peer goes."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hub import waits
from celeriac.transport.hubstate import HubState
from celeriac.transport.store import MemoryStore

C, W = b"client", b"worker"


def errors(hub: HubState) -> list[Any]:
    out = [p.decode(f[1:]) for f in hub.outbox]
    hub.outbox.clear()
    return [m.code for m in out if isinstance(m, p.Error)]


def test_waits_over_the_limit_are_refused_and_freed_by_results_and_bye(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Limit 2: a third WAIT gets ERR waits; a result frees one; BYE frees all."""
    monkeypatch.setattr(waits, "MAX_WAITS_PER_PEER", 2)
    hub = HubState(MemoryStore(), FakeClock(), hub_id="h")
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
