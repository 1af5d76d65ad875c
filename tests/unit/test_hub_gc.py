"""A hub's process runs with the collector's thresholds raised (runtime/hub.py)."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from celeriac._conf import Settings
from celeriac.runtime import hub as hub_runtime


class _Server:
    """Stands for the HubServer: records the thresholds its loop would run under."""

    seen: tuple[int, ...] | None = None

    def run(self) -> None:
        _Server.seen = gc.get_threshold()


def test_the_hub_loop_runs_with_the_hub_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_hub`` sets :data:`HUB_GC_THRESHOLDS` before serving (young collections rare: a
    queued task's objects are not walked again and again)."""
    before = gc.get_threshold()
    monkeypatch.setattr(hub_runtime.HubServer, "from_settings", lambda *a, **k: _Server())
    monkeypatch.setattr(gc, "freeze", lambda: None)  # the test process keeps its collector
    try:
        conf: Any = Settings({"broker_url": "tcp://127.0.0.1:1"})
        assert hub_runtime.run_hub(conf, stop_signals=()) == 0
    finally:
        gc.set_threshold(*before)
    assert _Server.seen == hub_runtime.HUB_GC_THRESHOLDS
    assert hub_runtime.HUB_GC_THRESHOLDS[0] > before[0]
