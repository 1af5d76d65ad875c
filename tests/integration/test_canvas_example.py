"""The canvas example end to end: a worker from the CLI in examples/canvas, then client.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Spawner, clean_env, run_example

pytestmark = pytest.mark.integration

CANVAS = Path(__file__).resolve().parents[2] / "examples" / "canvas"


def test_canvas_example_runs(procs: Spawner, broker_url: str, tmp_path: Path) -> None:
    """`celeriac -A tasks worker` + `python client.py`: every shape prints its result."""
    env = clean_env(CELERIAC_BROKER_URL=broker_url, CANVAS_STORE=str(tmp_path / "store"))
    env["CELERIAC_HUB_DATA_DIR"] = str(tmp_path / "hub")
    procs.worker(broker_url, cwd=CANVAS, app="tasks", env=env)
    lines = run_example(CANVAS, "client.py", env)
    assert lines[0] == "chain stored: {'title': 'https://example.com/', 'words': 9, 'size': 106}"
    assert lines[1:5] == [
        "chain: 16",
        "group: [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]",
        "chord: 9900",
        "retried: 2 times",
    ]
    assert lines[5] == "boom raised: boom (on_error was called with its id)"
    assert lines[6] == "revoked: REVOKED"
    assert lines[7:9] == ["replaced: 42", "terminated: REVOKED"]
    assert (tmp_path / "store" / "errors.log").read_text().strip() != ""
