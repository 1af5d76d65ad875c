"""``app.backend``: the hub's result store seen through Celery's result-backend methods.

Results live in the hub (there is no backend to configure); this face gives code written
against Celery's ``app.backend`` the calls it makes most: :meth:`HubBackend.get_task_meta`,
``get_state``/``get_status``, ``get_result``, ``get_traceback``, ``forget`` and
``ensure_chords_allowed`` (chords are counted at the hub: always allowed). Each reads the hub
through the app's connection, as :class:`~celeriac.AsyncResult` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import states

if TYPE_CHECKING:
    from ._app import App

__all__ = ["HubBackend"]


class HubBackend:
    """Celery's result-backend methods over the hub's result store (``app.backend``)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def ensure_chords_allowed(self) -> None:
        """Chords are counted at the hub, durably: always allowed (Celery raises for a
        backend that cannot count them)."""

    def get_task_meta(self, task_id: str, cache: bool = True) -> dict[str, Any]:
        """Celery's meta map: ``task_id``, ``status``, ``result`` (the value or exception),
        ``traceback``, ``children`` (their ids; None until the task has finished)."""
        result = self.app.AsyncResult(task_id)
        status = result.state
        ready = status in states.READY_STATES
        children = result.children if ready else None
        return {
            "task_id": task_id,
            "status": status,
            "result": result.result if ready else None,
            "traceback": result.traceback if ready else None,
            "children": [c.id for c in children] if children is not None else None,
        }

    def get_state(self, task_id: str) -> str:
        """The task's state (``AsyncResult(task_id).state``)."""
        return self.app.AsyncResult(task_id).state

    get_status = get_state

    def get_result(self, task_id: str) -> Any:
        """The value, or the exception of a failed task; None while not finished."""
        return self.app.AsyncResult(task_id).result

    def get_traceback(self, task_id: str) -> str | None:
        """The remote traceback of a failed task."""
        return self.app.AsyncResult(task_id).traceback

    def forget(self, task_id: str) -> None:
        """Drop the stored result at the hub."""
        self.app.AsyncResult(task_id).forget()
