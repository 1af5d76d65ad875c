"""Running a standalone hub process (``celeriac hub``)."""

from __future__ import annotations

import signal
from pathlib import Path

from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac.transport.hubserver import HubServer

__all__ = ["run_hub"]

_log = get_logger("celeriac.hub")


def run_hub(
    conf: Settings,
    *,
    bind: str | None = None,
    data_dir: Path | None = None,
    sync: str | None = None,
) -> int:
    """Serve a hub in this thread until SIGTERM/SIGINT; returns the exit code."""
    server = HubServer.from_settings(conf, bind=bind, data_dir=data_dir, sync=sync)

    def on_signal(signum: int, _frame: object) -> None:
        _log.info("hub_stopping", signal=signal.Signals(signum).name)
        server.stop(timeout=0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.run()
    return 0
