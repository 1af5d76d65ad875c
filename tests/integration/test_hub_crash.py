"""kill -9 of the hub with hundreds of confirmed tasks queued: after a restart all run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from celeriac import App

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, wait_for_event

pytestmark = pytest.mark.integration

TASKS = 300


def test_confirmed_tasks_survive_a_hub_kill(
    procs: Spawner,
    broker_url: str,
    tmp_path: Path,
    tasks_module: TaskModule,
    client: App,
    hub_store_url: str | None,
) -> None:
    """Publishes confirmed by flush() are durable: a restarted hub (on the same SQLite file,
    or the same PostgreSQL schema) delivers each one."""
    data_dir = tmp_path / "hub-data"
    hub = procs.hub(broker_url, data_dir, store=hub_store_url)
    results = [client.send_task("itasks.record") for _ in range(TASKS)]
    client.flush(RESULT_TIMEOUT)
    hub.kill9()

    restarted = procs.hub(broker_url, data_dir, store=hub_store_url)
    started = wait_for_event(restarted.log, "hub_started", timeout=1)
    assert started["restored"] == TASKS
    procs.worker(broker_url, cwd=tasks_module.dir, concurrency=4)

    for r in results:
        assert isinstance(r.get(timeout=RESULT_TIMEOUT), int)
    runs = Counter(tasks_module.ended())
    assert set(runs) == {r.id for r in results}
    assert sum(runs.values()) == TASKS  # each exactly once: no worker held any at the crash
    assert all(r.state == "SUCCESS" for r in results)
