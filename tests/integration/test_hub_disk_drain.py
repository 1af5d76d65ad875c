"""A hub's disk use returns after a drain: WAL truncated, freed pages given back (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac import App

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, wait_until

pytestmark = pytest.mark.integration

TASKS = 3000
BODY = 8000


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_the_data_dir_shrinks_back_after_the_queue_is_drained(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, tmp_path: Path
) -> None:
    """3000 tasks of 8 KB (24 MB) queued, then run by a worker: the data dir goes back to
    within 2 MiB of its size at start."""
    data = tmp_path / "hub-data"
    procs.hub(broker_url, data)
    start = _du(data)
    client = App("client", broker=broker_url, environ={})
    try:
        for i in range(TASKS):
            client.send_task("itasks.add", ["x" * BODY, str(i)], ignore_result=True)
        client.flush(timeout=RESULT_TIMEOUT * 4)
        assert _du(data) > start + TASKS * BODY // 2
        procs.worker(broker_url, cwd=tasks_module.dir)
        last = client.send_task("itasks.add", [1, 2])  # runs after the others (one queue)
        assert last.get(timeout=RESULT_TIMEOUT * 4) == 3
        wait_until(
            lambda: _du(data) <= start + (2 << 20),
            RESULT_TIMEOUT * 2,
            f"the data dir back near {start} bytes (now {_du(data)})",
        )
    finally:
        client.close()
