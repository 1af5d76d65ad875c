"""An idle worker's slot sends its own ``DONE`` (runtime/connection.py, ``_direct``), before
the session's bookkeeping of it (``Finished``); with an ``on_task_end`` listening (a prefork
child's parent must hear "finished" before the ``DONE``), the bookkeeping comes first."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.runtime import connection as connection_module
from celeriac.runtime import connection_effects
from celeriac.testing import start_worker

pytestmark = pytest.mark.integration


def _orders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, listen: bool) -> list[str]:
    """The order of DONE sends and Finished effects of 20 sequential tasks on a slot's thread."""
    app = App("direct", environ={})

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    seen: list[str] = []
    send = connection_module.send_frames
    finished = connection_effects.ConnectionEffects._do_finished

    def recording_send(sock: Any, frames: Any, flags: int = 0) -> None:
        if frames[1] == b"DONE":
            seen.append(f"DONE {threading.current_thread().name}")
        send(sock, frames, flags)

    def recording_finished(self: Any, effect: Any) -> None:
        seen.append(f"Finished {threading.current_thread().name}")
        finished(self, effect)

    monkeypatch.setattr(connection_module, "send_frames", recording_send)
    monkeypatch.setattr(connection_effects.ConnectionEffects, "_do_finished", recording_finished)
    with start_worker(app, data_dir=tmp_path) as worker:
        if listen:
            worker.node.on_task_end = lambda delivery: None
        for i in range(20):
            assert add.delay(i, 1).get(timeout=20) == i + 1
    # On a slot's thread (the direct path) a task gives two events, in one order or the other;
    # through the loop both are on the connection's thread (left out).
    mine = [event.split()[0] for event in seen if "TaskSlot" in event]
    return [f"{a} {b}" for a, b in zip(mine[::2], mine[1::2], strict=True)]


def test_a_direct_done_leaves_before_its_bookkeeping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = _orders(tmp_path, monkeypatch, listen=False)
    assert "DONE Finished" in pairs  # the idle worker's slots sent some themselves
    assert "Finished DONE" not in pairs


def test_with_on_task_end_the_bookkeeping_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = _orders(tmp_path, monkeypatch, listen=True)
    assert "Finished DONE" in pairs
    assert "DONE Finished" not in pairs
