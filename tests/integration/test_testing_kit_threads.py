"""The test kit reads hub statistics between hub turns, and its log lines reach pytest's capture."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.testing import TestWorker, start_worker

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


def test_statistics_wait_for_the_hub_turn_in_progress(
    celeriac_worker: TestWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """join()/statistics() never read the hub state while its thread is in the middle of a turn."""
    hub = celeriac_worker.hub
    in_turn, release = threading.Event(), threading.Event()
    original = hub.state.tick

    def tick_and_hold() -> None:
        original()
        if not in_turn.is_set():
            in_turn.set()
            release.wait(TIMEOUT)  # the hub thread holds here, mid-turn

    monkeypatch.setattr(hub.state, "tick", tick_and_hold)
    assert in_turn.wait(TIMEOUT)
    read = threading.Event()
    seen: list[dict[str, Any]] = []

    def reader() -> None:
        seen.append(celeriac_worker.statistics())
        read.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert not read.wait(0.3)  # blocked until the turn ends
    finally:
        release.set()
    assert read.wait(TIMEOUT)
    thread.join(TIMEOUT)
    assert seen[0]["messages"] == 0
    celeriac_worker.join(TIMEOUT)


def test_worker_log_lines_go_to_pytest_log_capture(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hub and worker log lines reach caplog (stdlib logging), not the test's stdout."""
    caplog.set_level(logging.INFO, logger="celeriac")
    app = App("logcap", environ={})

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, data_dir=tmp_path):
        assert add.delay(2, 3).get(timeout=TIMEOUT) == 5
    by_logger = {(r.name, r.getMessage().split()[0]) for r in caplog.records}
    assert ("celeriac.worker", "worker_ready") in by_logger
    assert ("celeriac.hub", "hub_started") in by_logger
    out = capsys.readouterr().out
    assert "worker_ready" not in out
    assert "hub_started" not in out
