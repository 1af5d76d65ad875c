"""``app.control``: the remote-control face of the App; for now only ``revoke``.

A minimal start (issue 8); the control issue may grow it (inspect, broadcast, rate limits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import App

__all__ = ["Control"]


class Control:
    """Remote control of the workers and the hub through ``app``'s connection."""

    def __init__(self, app: App) -> None:
        self.app = app

    def revoke(
        self,
        task_id: str | Sequence[str],
        destination: Sequence[str] | None = None,
        terminate: bool = False,
        signal: str = "SIGTERM",
        **_: Any,
    ) -> None:
        """Revoke tasks by id: queued or delayed ones are removed at the hub, later publishes
        under these ids are dropped, and the revocation is durable (it survives restarts of
        the hub) when this returns. A task a worker already holds ends REVOKED without running
        if it has not started; a running one finishes, unless ``terminate`` is set: then it is
        stopped (``-P prefork``: its child process gets ``signal``; threads: an exception
        raised in its thread; asyncio: cancelled; see celeriac.actors.terminate) and ends
        REVOKED. ``task_revoked`` is sent on the worker either way. ``destination`` is accepted
        for Celery's signature and ignored: revocations are held by the hub for every worker."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        if not ids:
            return
        client = self.app._client()
        client.revoke(ids, terminate, signal)
        # One round trip on the same connection: the hub answers after the commit that holds
        # the revocation, so it is durable once this returns.
        client.state(ids[-1])
