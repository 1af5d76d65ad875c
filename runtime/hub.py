"""Running a standalone hub process (``celeriac hub``)."""

from __future__ import annotations

import gc
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Final

from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured
from celeriac.transport.endpoints import hub_addresses
from celeriac.transport.hubserver import HubServer

__all__ = ["migrate_store", "run_hub"]

_log = get_logger("celeriac.hub")

#: The collector's thresholds in a hub's process (``gc.set_threshold``; Python's are 700, 10,
#: 10). Each queued task holds a few objects until it is done, so under load the young
#: collections find them alive, promote them, and full collections walk the backlog: 4.6% of a
#: loaded hub's CPU at the defaults (five 27 ms full collections in 150,000 tasks), 1.4% at
#: these (five 16 ms young ones), measured with ``benchmarks/cpu_split.py --tasks 100000``.
#: A task's objects are freed by their reference counts when it is done (the hub makes no
#: cycle per task): the collector only has the rare cycle to find, later.
HUB_GC_THRESHOLDS: Final = (50_000, 20, 10)


def run_hub(
    conf: Settings,
    *,
    bind: str | None = None,
    data_dir: Path | None = None,
    sync: str | None = None,
    store_url: str | None = None,
    shared: bool | None = None,
    also_bind: tuple[str, ...] = (),
    on_ready: Callable[[HubServer], None] | None = None,
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> int:
    """Serve a hub in this thread until one of ``stop_signals``; returns the exit code.

    ``also_bind``: more addresses to listen at; ``on_ready`` is called with the server once it
    listens and has restored its store (the embedded hub's child process tells its worker).
    """
    if bind is None and len(hub_addresses(conf.broker_url)) > 1:
        raise ImproperlyConfigured(
            f"broker_url lists several hubs ({conf.broker_url}), for the peers that fail over "
            "between them; a hub listens at one address: give it with --bind (e.g. "
            "celeriac hub --bind tcp://0.0.0.0:5555)"
        )
    server = HubServer.from_settings(
        conf,
        bind=bind,
        data_dir=data_dir,
        sync=sync,
        store_url=store_url,
        shared=shared,
        also_bind=also_bind,
    )

    def on_signal(signum: int, _frame: object) -> None:
        _log.info("hub_stopping", signal=signal.Signals(signum).name)
        server.stop(timeout=0)

    for signum in stop_signals:
        signal.signal(signum, on_signal)
    if on_ready is not None:
        on_ready(server)
    # What start-up made (modules, the restored state) lives as long as the process does: out
    # of the collector's way, a full collection under load walks only what traffic made (the
    # worker does the same: runtime/worker.py).
    gc.freeze()
    gc.set_threshold(*HUB_GC_THRESHOLDS)
    server.run()
    return 0


def migrate_store(conf: Settings, store_url: str | None = None) -> str:
    """Create or upgrade the PostgreSQL tables of ``store_url`` (default ``hub_store_url``);
    returns a line saying what was done. Idempotent."""
    url = store_url or conf["hub_store_url"]
    if not url:
        raise ImproperlyConfigured(
            "--migrate needs a PostgreSQL store: --store postgresql://... or hub_store_url"
        )
    try:
        from celeriac.transport.pg_connect import migrate  # noqa: PLC0415 - optional
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"psycopg is missing ({exc}): pip install 'celeriac[postgres]'"
        ) from None
    before, after, where = migrate(url)
    if before == after:
        return f"{where}: schema at version {after}, nothing to do"
    return f"{where}: schema migrated from version {before} to {after}"
