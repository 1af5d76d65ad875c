"""The worker's connection thread is supervised: a crash is restarted without losing work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.runtime import connection as connection_module
from celeriac.testing import start_worker

from .conftest import wait_until

pytestmark = pytest.mark.integration


def test_crashed_connection_is_rebuilt_and_every_task_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One crash in the connection loop: it is rebuilt, and every task still completes."""
    app = App("connsup", environ={})

    @app.task
    def double(x: int) -> int:
        return 2 * x

    original = connection_module.HubConnection._received
    crashed: list[bool] = []

    def crash_once(self: Any, message: Any) -> None:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("injected fault in the connection loop")
        original(self, message)

    with start_worker(app, data_dir=tmp_path) as worker:
        monkeypatch.setattr(connection_module.HubConnection, "_received", crash_once)
        results = [double.delay(i) for i in range(10)]
        assert [r.get(timeout=20) for r in results] == [2 * i for i in range(10)]
        assert worker.node.connection_restarts == 1
        assert worker.node.exit_code == 0


def test_connection_crashing_again_and_again_escalates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that keeps crashing makes the node give up with exit code 1."""
    app = App("connsup2", environ={})

    @app.task
    def noop() -> None:
        return None

    def always_crash(self: Any, message: Any) -> None:
        raise RuntimeError("injected fault, every time")

    with start_worker(app, data_dir=tmp_path) as worker:
        monkeypatch.setattr(connection_module.HubConnection, "_received", always_crash)
        noop.delay()
        wait_until(lambda: worker.node.exit_code != 0, 20, "the node to give up")
        assert worker.node.exit_code == 1
        assert worker.node.connection_restarts == connection_module.CONNECTION_RESTARTS
