"""The one-at-a-time example end to end: a worker in examples/one_at_a_time, then client.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import Spawner, clean_env, run_example

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one_at_a_time"


def test_import_feed_runs_one_at_a_time_three_ways(
    procs: Spawner, broker_url: str, tmp_path: Path
) -> None:
    """app.lock, the lock option and the keyed actor each keep imports of one feed from
    overlapping; the lock ways skip, the actor runs all four in order."""
    store = tmp_path / "store"
    env = clean_env(CELERIAC_BROKER_URL=broker_url, FEEDS_STORE=str(store))
    env["CELERIAC_HUB_DATA_DIR"] = str(tmp_path / "hub")
    procs.worker(broker_url, cwd=EXAMPLE, app="feeds", env=env, concurrency=4)
    lines = run_example(EXAMPLE, "client.py", env)
    imported = []
    for line, way in zip(lines[:2], ("app.lock", "lock option"), strict=True):
        match = re.fullmatch(rf"{way}: (\d) imported, (\d) skipped", line)
        assert match, line
        imported.append(int(match[1]))
    assert all(n >= 1 for n in imported)
    assert lines[2] == "keyed actor: imports [1, 2, 3, 4]"
    log = (store / "imports.log").read_text().split()[::2]
    assert log == ["enter", "exit"] * (len(log) // 2), "two imports of one feed overlapped"
    assert len(log) // 2 == sum(imported) + 4
