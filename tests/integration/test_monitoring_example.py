"""examples/monitoring end to end: a worker with -E, then monitor.py (inspect + events)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import Spawner, clean_env, embed_if_free, run_example, wait_for_event

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monitoring"


def test_monitoring_example_runs(procs: Spawner, broker_url: str, tmp_path: Path) -> None:
    """`celeriac -A tasks worker -E` + `python monitor.py`: ping, stats, a custom command, and
    20 tasks counted from their events."""
    env = clean_env(CELERIAC_BROKER_URL=broker_url, CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    argv = [sys.executable, "-m", "celeriac", "-A", "tasks", "worker", "-E", "-n", "mon@example"]
    argv += ["-c", "2", "--log-format", "json"]
    argv += embed_if_free(broker_url)  # a configured broker: auto would wait for a hub
    worker = procs.spawn("worker", argv, cwd=EXAMPLE, env=env)
    wait_for_event(worker.log, "worker_ready", proc=worker)
    lines = run_example(EXAMPLE, "monitor.py", env)
    assert lines == [
        "ping: {'mon@example': {'ok': 'pong'}}",
        "mon@example: pool threads, 2 slots",
        "custom: {'mon@example': {'ok': 1}}",
        "sum of squares: 2470",
        "tasks by state: {'SUCCESS': 20}",
        "workers: ['mon@example']",
    ]
