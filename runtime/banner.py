"""The worker's start-up banner: what this node is, where its hub and data are, what it runs.

Printed once on stderr when a worker starts (as Celery's worker does), unless ``--quiet``: as
text with the console log format, as one ``worker_banner`` JSON record with ``--log-format
json`` (so every line stays JSON).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from celeriac._app import App
from celeriac._version import VERSION

__all__ = ["Banner", "show_banner"]


@dataclass(frozen=True)
class Banner:
    """The facts a banner shows."""

    node: str
    app: str
    broker: str
    hub: str
    pool: str
    concurrency: int
    queues: list[str]
    tasks: list[str]

    @classmethod
    def of(
        cls,
        app: App,
        *,
        node: str,
        hub: str,
        pool: str,
        concurrency: int,
        queues: list[str],
    ) -> Banner:
        """The banner of a node of ``app``; ``hub`` says embedded (with its data dir) or not."""
        tasks = sorted(name for name in app.tasks if not name.startswith("celery."))
        return cls(
            node,
            app.main or "(unnamed)",
            app.conf.broker_url,
            hub,
            pool,
            concurrency,
            queues,
            tasks,
        )

    def text(self) -> str:
        """Celery-like text: a header, the config block, then the registered tasks."""
        header = f"celeriac {VERSION} — worker {self.node} (pid {os.getpid()})"
        rows = [
            ("app", self.app),
            ("broker", self.broker),
            ("hub", self.hub),
            ("concurrency", f"{self.concurrency} ({self.pool})"),
            ("queues", ", ".join(self.queues) or "(none)"),
        ]
        lines = [header, *(f"  .> {key + ':':<13}{value}" for key, value in rows), "", "[tasks]"]
        lines += [f"  . {name}" for name in self.tasks] or ["  (none registered)"]
        return "\n".join(lines) + "\n"

    def record(self) -> str:
        """One JSON log record with every field."""
        fields = {"event": "worker_banner", "level": "info", "pid": os.getpid(), **asdict(self)}
        fields["version"] = VERSION
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return json.dumps(fields) + "\n"


def show_banner(banner: Banner, fmt: str) -> None:
    """Write the banner on stderr (``fmt``: the log format, ``json`` or ``console``)."""
    sys.stderr.write(banner.record() if fmt == "json" else banner.text())
    sys.stderr.flush()
