"""``AsyncResult``: a handle on a sent task; ``get()`` blocks until the hub pushes its result."""

from __future__ import annotations

import builtins
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import states
from ._current import get_current_app
from ._log import get_logger
from ._request import current_request
from ._result_compat import ResultCompat
from .exceptions import RemoteTaskError
from .exceptions import TimeoutError as CeleriacTimeoutError

if TYPE_CHECKING:
    from dataclasses import dataclass as _hot

    from ._app import App
else:
    from ._protocol_parts import _hot

__all__ = [
    "AsyncResult",
    "EagerResult",
    "GroupResult",
    "Outcome",
    "ResultSet",
    "raise_parent_failure",
    "rebuild_exception",
    "result_from_tuple",
    "storable",
]

R_co = TypeVar("R_co", covariant=True)
#: Seconds ``result`` waits for a stored result the hub said exists.
_FETCH_TIMEOUT = 10.0
#: Seconds between looks at a result's parents while waiting for it (``follow_parents``).
_PARENT_POLL = 0.5

_log = get_logger("celeriac.client")


# Made once per result a client receives: frozen for mypy, plain slots at run time (see _hot).
@_hot(frozen=True, slots=True)
class Outcome:
    """A decoded result: state, the value (or failure info) and the remote traceback."""

    state: str
    value: Any
    traceback: str | None = None
    #: The ids of the tasks the task sent while it ran (``AsyncResult.children``).
    children: tuple[str, ...] = ()


class AsyncResult(ResultCompat, Generic[R_co]):
    """The result of one task call, by id (Celery's ``AsyncResult``; ``AsyncResult(id)`` uses
    the current app, as Celery's does)."""

    def __init__(self, task_id: str, app: App | None = None) -> None:
        self.id = task_id
        self.app = app if app is not None else get_current_app()  # Celery's: the current app
        self._outcome: Outcome | None = None
        #: The result of the previous step of a chain (set by ``chain.apply_async``): an
        #: AsyncResult, or a GroupResult for a chord's body.
        self.parent: Any = None

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def task_id(self) -> str:
        """Alias of ``id`` (Celery's name)."""
        return self.id

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        disable_sync_subtasks: bool = True,
        follow_parents: bool = True,
        **_: Any,
    ) -> R_co:
        """Wait for the result and return it; a failed task re-raises its exception here.

        A result sent with ``ignore_result=True`` returns None at once (Celery's ``ignored``).
        With ``follow_parents`` (Celery's default) a failed earlier step of the chain (its
        ``parent``, a chord's header task...) raises its own exception here, as soon as it has
        failed: the first failure, not the ChordError or later steps' copy of it.

        With ``propagate=False`` a failed task's exception is returned instead (as ``result``
        gives it), never the raw failure info. Raises :class:`celeriac.exceptions.TimeoutError`
        after ``timeout`` seconds. Called from inside a running task it raises RuntimeError
        (waiting there can deadlock the pool) unless ``disable_sync_subtasks=False``.
        """
        if disable_sync_subtasks and current_request() is not None:
            req = current_request()
            if req is not None and not req.called_directly:
                raise RuntimeError(
                    "Never call result.get() within a task: it can deadlock the worker; "
                    "use a chain or pass disable_sync_subtasks=False if you are sure"
                )
        if self.ignored:  # sent with ignore_result: no result will come (Celery returns None)
            return None  # type: ignore[return-value]
        follow = propagate and follow_parents and self.parent is not None
        outcome = self._wait_following(timeout) if follow else self._wait(timeout)
        if outcome.state in states.EXCEPTION_STATES:
            if follow:
                raise_parent_failure(self)
            exc = rebuild_exception(outcome.value, outcome.traceback)
            if propagate and outcome.state in states.PROPAGATE_STATES:
                raise exc
            return exc  # type: ignore[return-value]  # Celery's contract: the exception
        return outcome.value  # type: ignore[no-any-return]

    def _wait(self, timeout: float | None) -> Outcome:
        if self._outcome is None:
            self._outcome = self.app._client().wait(self.id, timeout)
        return self._outcome

    def _wait_following(self, timeout: float | None) -> Outcome:
        """``_wait``, raising a failed parent's exception as soon as one is seen."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            raise_parent_failure(self)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise CeleriacTimeoutError("the operation timed out")
            try:
                return self._wait(_PARENT_POLL if left is None else min(left, _PARENT_POLL))
            except CeleriacTimeoutError:
                continue

    def _peek(self) -> Outcome | None:
        if self._outcome is None:
            self._outcome = self.app._client().peek(self.id)
        return self._outcome

    @property
    def state(self) -> str:
        """PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED or REJECTED."""
        outcome = self._peek()
        if outcome is not None:
            return outcome.state
        return self.app._client().state(self.id)

    status = state

    def ready(self) -> bool:
        """True once the task has finished (whatever the outcome)."""
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        """True if the task finished without error."""
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        """True if the task finished with an error."""
        return self.state == states.FAILURE

    @property
    def result(self) -> Any:
        """The return value, or the exception for a failed task; while it runs, the meta of
        its last ``update_state`` (Celery's meaning); None while pending."""
        outcome = self._peek()
        if outcome is None:
            info = self._hub_info()
            if info is None or info.state in states.UNREADY_STATES:
                return None
            if info.meta is not None:  # running, with a custom state
                return self._progress_meta(info)
            try:
                outcome = self._wait(_FETCH_TIMEOUT)  # ended: fetch the stored result
            except CeleriacTimeoutError:  # a state with no stored result (revoked unsent)
                return None
        if outcome.state in states.EXCEPTION_STATES:
            return rebuild_exception(outcome.value, outcome.traceback)
        return outcome.value

    @property
    def traceback(self) -> str | None:
        """The remote traceback of a failed task."""
        outcome = self._peek()
        return outcome.traceback if outcome else None

    @property
    def children(self) -> list[AsyncResult[Any]] | None:
        """The results of the tasks this task sent while it ran (Celery's ``children``), in
        the order sent; None until the task has finished. The next step of a chain and the
        callbacks are not children (they are sent after it ran; see ``parent``)."""
        outcome = self._peek()
        if outcome is None:
            return None
        return [AsyncResult(child, self.app) for child in outcome.children]

    def iterdeps(
        self, intermediate: bool = False
    ) -> Iterator[tuple[AsyncResult[Any] | None, AsyncResult[Any]]]:
        """``(parent, node)`` for this result and its children, depth first (Celery's); each
        node is waited for before its children are read."""
        stack: list[tuple[AsyncResult[Any] | None, AsyncResult[Any]]] = [(None, self)]
        while stack:
            parent, node = stack.pop()
            yield parent, node
            if not node.ready() and intermediate:
                continue
            node._wait(None)
            stack.extend((node, child) for child in reversed(node.children or ()))

    def collect(
        self, intermediate: bool = False, timeout: float | None = None, **kw: Any
    ) -> Iterator[tuple[AsyncResult[Any], Any]]:
        """``(result, value)`` for this task and every task it sent, recursively, depth first
        (Celery's ``collect``): each value is waited for (``timeout`` each)."""
        for _, node in self.iterdeps(intermediate=intermediate):
            yield node, node.get(timeout=timeout, disable_sync_subtasks=False, **kw)

    def then(
        self,
        callback: Callable[[AsyncResult[Any]], Any],
        on_error: Callable[[BaseException], Any] | None = None,
        weak: bool = False,
    ) -> None:
        """Call ``callback(self)`` once the task has finished (Celery's promise ``then``): at
        once if it already has, else from a daemon thread that waits for the result pushed by
        the hub. An exception raised by ``callback`` goes to ``on_error`` (else it is logged).
        ``weak`` is accepted for Celery's signature."""

        def run() -> None:
            try:
                self._wait(None)
                callback(self)
            except Exception as exc:
                if on_error is None:
                    _log.exception("result_then_failed", task_id=self.id)
                else:
                    on_error(exc)

        if self._outcome is not None:
            run()
            return
        threading.Thread(target=run, name=f"celeriac-then-{self.id[:8]}", daemon=True).start()

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: str = "SIGTERM",
        wait: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Revoke this task (``app.control.revoke``): durable at the hub when this returns."""
        self.app.control.revoke(self.id, terminate=terminate, signal=signal)

    def forget(self) -> None:
        """Drop the stored result at the hub (and here)."""
        self._outcome = None
        self.app._client().forget(self.id)


def storable(value: Any) -> Any:
    """A task's return value as it is stored: a result handle (AsyncResult, GroupResult)
    becomes its ``as_tuple()`` form, as Celery's backends store it (rebuilt with
    :func:`result_from_tuple`); anything else is kept."""
    as_tuple = getattr(value, "as_tuple", None)
    if isinstance(value, AsyncResult | ResultSet) and callable(as_tuple):
        return as_tuple()
    return value


def result_from_tuple(r: Any, app: App | None = None) -> Any:
    """The AsyncResult or GroupResult of an ``as_tuple()`` form (Celery's name)."""
    (task_id, parent), members = r
    result: Any
    if members is not None:
        result = GroupResult(task_id, [result_from_tuple(m, app) for m in members], app=app)
    else:
        result = AsyncResult(task_id, app)
    result.parent = result_from_tuple(parent, app) if parent is not None else None
    return result


def rebuild_exception(info: Any, traceback: str | None = None) -> BaseException:
    """Rebuild a task's exception from its failure info.

    Only types already imported in this process are rebuilt (no module is imported because a
    peer named it); anything else becomes :class:`RemoteTaskError` with the original names.
    """
    if not isinstance(info, dict):
        return RemoteTaskError("Exception", "builtins", repr(info), traceback)
    name = str(info.get("exc_type", "Exception"))
    module = str(info.get("exc_module", "builtins"))
    raw_args = info.get("exc_message", [])
    args = tuple(raw_args) if isinstance(raw_args, list | tuple) else (raw_args,)
    cls = _find_exception_type(module, name)
    if cls is not None:
        try:
            exc = cls(*args)
        except Exception:
            exc = None
        if exc is not None:
            if traceback:
                exc.add_note(f"Remote traceback:\n{traceback}")
            return exc
    message = ", ".join(str(a) for a in args)
    return RemoteTaskError(name, module, message, traceback)


def _find_exception_type(module: str, name: str) -> type[BaseException] | None:
    mod = builtins if module == "builtins" else sys.modules.get(module)
    obj: Any = mod
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    # Never rebuild an exception that would stop this process.
    if (
        isinstance(obj, type)
        and issubclass(obj, BaseException)
        and not issubclass(obj, SystemExit | KeyboardInterrupt)
    ):
        return obj
    return None


from ._eager import EagerResult  # noqa: E402 - Celery's import path
from ._resultset import GroupResult, ResultSet, raise_parent_failure  # noqa: E402 - they build on AsyncResult
