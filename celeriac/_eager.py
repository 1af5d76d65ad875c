"""``EagerResult``: the result of ``Task.apply()``, a call run here and now (Celery's name)."""

from __future__ import annotations

from typing import Any

from . import states

__all__ = ["EagerResult"]


class EagerResult:
    """The outcome of a task run in this process: ``get()`` returns or raises at once."""

    def __init__(
        self,
        task_id: str,
        value: Any,
        state: str,
        traceback: str | None = None,
        name: str | None = None,
    ) -> None:
        self.id = task_id
        self._value = value
        self._state = state
        self.traceback = traceback
        self.name = name
        self.parent: Any = None

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id}>"

    @property
    def task_id(self) -> str:
        """Alias of ``id``."""
        return self.id

    @property
    def state(self) -> str:
        """SUCCESS or FAILURE."""
        return self._state

    status = state

    @property
    def result(self) -> Any:
        """The return value, or the exception."""
        return self._value

    def get(self, timeout: float | None = None, propagate: bool = True, **_: Any) -> Any:
        """The return value; a failed call re-raises its exception (unless ``propagate``)."""
        if self._state in states.PROPAGATE_STATES and propagate:
            raise self._value
        return self._value

    wait = get

    def ready(self) -> bool:
        """Always True: the call already ran."""
        return True

    def successful(self) -> bool:
        """True if the call returned."""
        return self._state == states.SUCCESS

    def failed(self) -> bool:
        """True if the call raised."""
        return self._state == states.FAILURE

    def forget(self) -> None:
        """Nothing is stored: nothing to forget."""

    def revoke(self, *args: Any, **kwargs: Any) -> None:
        """A call that already ran cannot be revoked: nothing happens."""
