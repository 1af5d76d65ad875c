"""A chord survives a worker killed mid-header and a hub restart: its body runs exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from celeriac import App, chord, signature

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, wait_until

pytestmark = pytest.mark.integration

HEADER = 6

TOTAL_TASK = '''

@app.task(name="itasks.total", bind=True)
def total(self, values):
    """A chord body: logs its execution like record, returns how many values it got."""
    _append(EXEC_LOG, f"start {self.request.id} {os.getpid()}")
    _append(EXEC_LOG, f"end {self.request.id} {os.getpid()}")
    return len(values)
'''


def test_chord_fires_once_after_worker_kill_and_hub_restart(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """kill -9 a worker mid-header, then the hub; after restarts the body runs once with all."""
    with (tasks_module.dir / "itasks.py").open("a") as f:
        f.write(TOTAL_TASK)
    data_dir = tmp_path / "hub-data"
    hub = procs.hub(broker_url, data_dir)
    worker = procs.worker(broker_url, cwd=tasks_module.dir, concurrency=2)
    header = [
        signature("itasks.record", kwargs={"seconds": 1.0}, app=client) for _ in range(HEADER)
    ]
    result = chord(header)(signature("itasks.total", app=client))
    client.flush(RESULT_TIMEOUT)
    wait_until(tasks_module.ended, RESULT_TIMEOUT, "a header task to end", worker)
    worker.kill9()
    hub.kill9()
    assert len(set(tasks_module.ended())) < HEADER

    procs.hub(broker_url, data_dir)
    procs.worker(broker_url, cwd=tasks_module.dir, concurrency=4, name="worker2")
    assert result.get(timeout=RESULT_TIMEOUT) == HEADER
    runs = Counter(tasks_module.ended())
    assert runs[result.id] == 1
    header_ids = {r.id for r in result.parent.results}
    assert header_ids <= set(runs)
