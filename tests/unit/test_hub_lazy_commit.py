"""Turns that promise nothing about the store send first and commit later (``.lazycommit``)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from celeriac import App
from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer
from celeriac.transport.lazycommit import COMMIT_DELAY, LazyCommit

from .test_client_early_results import run_tasks

TASK = [b"w", p.TAG, b"TASK"]
CONF = [b"c", p.TAG, b"CONF"]


def test_policy() -> None:
    """Deliveries and results may wait up to COMMIT_DELAY; a CONF (or anything else) or an
    old deferred write means commit now; the loop's timeout wakes it when they are due."""
    clock = FakeClock()
    lazy = LazyCommit(clock)
    assert lazy.timeout_ms(100) == 100
    assert lazy.may_defer([TASK, [b"c", p.TAG, b"RES"]])
    assert lazy.timeout_ms(100) <= COMMIT_DELAY * 1000 + 1
    assert not lazy.may_defer([TASK, CONF])
    clock.advance(COMMIT_DELAY / 2)
    assert lazy.may_defer([])
    clock.advance(COMMIT_DELAY)
    assert lazy.timeout_ms(100) == 0
    assert not lazy.may_defer([TASK])
    lazy.committed()
    assert lazy.timeout_ms(100) == 100
    assert lazy.may_defer([TASK])


def test_shared_hubs_never_defer() -> None:
    """A shared hub's deliveries come from claims other hubs read: each turn commits first."""
    lazy = LazyCommit(FakeClock(), enabled=False)
    assert not lazy.may_defer([TASK])
    assert not lazy.may_defer([])


def _on_disk(path: Path) -> tuple[int, int]:
    """(queued messages, stored results) as another process would read them: committed only."""
    db = sqlite3.connect(path)
    try:
        (messages,) = db.execute("SELECT count(*) FROM messages").fetchone()
        (results,) = db.execute("SELECT count(*) FROM results").fetchone()
        return messages, results
    finally:
        db.close()


def test_deferred_writes_reach_the_disk_without_more_traffic(hub_server: HubServer) -> None:
    """Publishes are on disk when confirmed; the workers' acknowledgements and results,
    sent in turns that commit lazily, are on disk soon after, with nothing else happening."""
    app = App("lazy", broker=hub_server.endpoint, environ={})
    app.conf.worker_embedded_hub = "never"
    path = hub_server.data_dir / "hub.sqlite3"
    try:
        results = [app.send_task("t", [i]) for i in range(20)]
        app.flush(timeout=10.0)
        assert _on_disk(path) == (20, 0)  # confirmed: committed
        run_tasks(hub_server.endpoint, 20)
        assert [r.get(timeout=10.0) for r in results] == [r.id for r in results]
        deadline = time.monotonic() + 10.0
        while _on_disk(path) != (0, 20):
            assert time.monotonic() < deadline, f"on disk: {_on_disk(path)}"
            hub_server._stop.wait(0.01)  # polling another connection: nothing to wait on
    finally:
        app.close()
