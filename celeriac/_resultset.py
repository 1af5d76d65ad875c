"""``ResultSet`` and ``GroupResult``: many results read as one (Celery's ``celery.result``)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import states
from .exceptions import TaskRevokedError
from .exceptions import TimeoutError as CeleriacTimeoutError

if TYPE_CHECKING:
    from ._app import App
    from .result import AsyncResult

__all__ = ["GROUP_SAVE_TASK", "GroupResult", "ResultSet", "raise_parent_failure"]

#: The built-in task whose result, stored at the hub under a group's id, is its member ids.
GROUP_SAVE_TASK = "celeriac.group_save"
#: How far up a result's parents ``follow_parents`` looks.
_MAX_PARENTS = 1000
#: Seconds to read a failed parent's stored exception.
_FAILURE_FETCH = 10.0
#: Seconds ``restore`` waits for a saved group by default.
_RESTORE_WAIT = 30.0


class ResultSet:
    """Results of several tasks, in order: ``get()`` returns the list of their values."""

    def __init__(self, results: Sequence[AsyncResult[Any]], app: App | None = None) -> None:
        self.results = list(results)
        self._app = app

    @property
    def app(self) -> App:
        """The App the results are read through."""
        if self._app is not None:
            return self._app
        return self.results[0].app

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult[Any]]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult[Any]:
        return self.results[index]

    def add(self, result: AsyncResult[Any]) -> None:
        """Add a result to the set (once)."""
        if result not in self.results:
            self.results.append(result)

    def get(self, timeout: float | None = None, propagate: bool = True, **kwargs: Any) -> list[Any]:
        """Every result's value, in order (``join``); a failure re-raises with ``propagate``."""
        return self.join(timeout=timeout, propagate=propagate, **kwargs)

    def join(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        disable_sync_subtasks: bool = True,
        **_: Any,
    ) -> list[Any]:
        """Wait for each result in order; ``timeout`` bounds the whole wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise CeleriacTimeoutError("the operation timed out")
            try:
                value = result.get(
                    timeout=left, propagate=propagate, disable_sync_subtasks=disable_sync_subtasks
                )
            except Exception:
                if propagate:  # Celery's follow_parents: an earlier step's own failure first
                    raise_parent_failure(self)
                raise
            values.append(value)
        return values

    #: The result of the step before (a chain's, a chord body's header); None for a set.
    parent: Any = None

    def ready(self) -> bool:
        """True once every task has finished."""
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        """True if every task succeeded."""
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        """True if any task failed."""
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        """True while some task has not finished."""
        return not self.ready()

    def completed_count(self) -> int:
        """How many tasks succeeded."""
        return sum(1 for r in self.results if r.state == states.SUCCESS)

    def forget(self) -> None:
        """Drop every stored result."""
        for r in self.results:
            r.forget()

    def revoke(self, connection: Any = None, terminate: bool = False, **kwargs: Any) -> None:
        """Revoke every task, in one message to the hub."""
        if self.results:
            ids = [r.id for r in self.results]
            self.app.control.revoke(ids, terminate=terminate, **kwargs)


class GroupResult(ResultSet):
    """The results of a group, with the group's id."""

    def __init__(
        self,
        id: str,
        results: Sequence[AsyncResult[Any]],
        app: App | None = None,
        parent: AsyncResult[Any] | None = None,
    ) -> None:
        super().__init__(results, app)
        self.id = id
        self.parent = parent

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GroupResult) and (other.id, other.results) == (
            self.id,
            self.results,
        )

    def __hash__(self) -> int:
        return hash(self.id)

    def as_tuple(self) -> tuple[Any, ...]:
        """``((id, parent's form), [member forms])``, Celery's serializable form."""
        parent = self.parent.as_tuple() if self.parent is not None else None
        return ((self.id, parent), [r.as_tuple() for r in self.results])

    @property
    def children(self) -> list[AsyncResult[Any]]:
        """The member results."""
        return self.results

    def save(self) -> GroupResult:
        """Keep the member ids at the hub under the group's id (a built-in task stores them as
        its result, so a worker must consume the default queue); see :meth:`restore`."""
        ids = [r.id for r in self.results]
        self.app.send_task(GROUP_SAVE_TASK, [ids], task_id=self.id, ignore_result=False)
        return self

    @classmethod
    def restore(
        cls, id: str, backend: Any = None, app: App | None = None, timeout: float | None = None
    ) -> GroupResult:
        """The group saved under ``id`` (waits up to ``timeout`` for the save to be stored)."""
        if app is None:
            raise TypeError("GroupResult.restore(id, app=app): an App is needed")
        ids = app.AsyncResult(id).get(timeout=_RESTORE_WAIT if timeout is None else timeout)
        return cls(id, [app.AsyncResult(i) for i in ids], app=app)


def raise_parent_failure(result: Any) -> None:
    """Raise the exception of the earliest failed (or revoked, rejected) parent of ``result``
    (an AsyncResult or a GroupResult, whose members are looked at), if any; return otherwise
    (Celery's ``_maybe_reraise_parent_error``, behind ``get(follow_parents=True)``)."""
    parents: list[Any] = []
    node = getattr(result, "parent", None)
    while node is not None and len(parents) < _MAX_PARENTS:
        parents.append(node)
        node = getattr(node, "parent", None)
    for node in reversed(parents):
        for member in getattr(node, "results", None) or [node]:
            if isinstance(member, ResultSet) or member.state not in states.PROPAGATE_STATES:
                continue
            try:
                member.get(  # raises its exception
                    timeout=_FAILURE_FETCH, disable_sync_subtasks=False, follow_parents=False
                )
            except CeleriacTimeoutError:  # revoked before it was ever sent: no stored result
                raise TaskRevokedError(f"revoked: {member.id}") from None
