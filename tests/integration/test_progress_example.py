"""The progress example end to end: a worker from the CLI in examples/progress, client.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Spawner, clean_env, run_example

pytestmark = pytest.mark.integration

PROGRESS = Path(__file__).resolve().parents[2] / "examples" / "progress"


def test_progress_example_runs(procs: Spawner, broker_url: str, tmp_path: Path) -> None:
    """`celeriac -A tasks worker` + `python client.py`: progress lines, then the result."""
    env = clean_env(CELERIAC_BROKER_URL=broker_url, CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    procs.worker(broker_url, cwd=PROGRESS, app="tasks", env=env)
    lines = run_example(PROGRESS, "client.py", env)
    progress = [line for line in lines if line.startswith("progress: ")]
    assert progress, lines  # polled every 50 ms, 200 ms per step: some are seen
    assert all(line.endswith("/5") for line in progress)
    assert progress == sorted(progress)
    assert lines[-3:] == [
        "result: 5",
        "extended: tasks.resize_all (['img0.png', 'img1.png', 'img2.png', 'img3.png', "
        "'img4.png'],) on a worker: True",
        "custom final state: {'url': 'https://example.com/feed', 'why': 'not modified since "
        "last run'} SKIPPED",
    ]
