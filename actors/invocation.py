"""The guard around one call of task code: signals, the request's context, what it raised.

:class:`Invocation` is a ``with`` block around the call: ``task_prerun`` and the request's
context variable on entry; on exit it classifies what the code did (:func:`conclude`: SUCCESS,
FAILURE with ``task_failure``, REJECTED, IGNORED; a time limit that fired wins over what the
code returned or raised), calls the task's ``on_success``/``on_failure`` and ``after_return``
hooks (Celery's order; ``before_start`` is called just before the body) and sends
``task_postrun``. It swallows every exception of the task,
so an execution slot never dies from user code (DESIGN.md section 7).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import traceback as tb_module
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from celeriac import signals, states
from celeriac._canvas_flow import Replaced
from celeriac._log import get_logger
from celeriac._protocol import Delivery
from celeriac._request import Request, _current
from celeriac._task import Task
from celeriac._task_compat import StateReporter, TaskCompat, state_reporter
from celeriac.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded, TimeLimitExceeded

from .terminate import TaskTerminated
from .watchdog import SoftInterrupt

__all__ = ["IGNORED", "Invocation", "Prepared", "Result", "conclude", "overrides"]

_log = get_logger("celeriac.worker")

#: The state of a task that raised ``Ignore`` (Celery's); its last update_state wins.
IGNORED = states.IGNORED


@dataclass(slots=True)
class Prepared:
    """A delivery ready to run: its task, decoded arguments, request and effective limits."""

    task: Task[Any, Any]
    delivery: Delivery
    args: list[Any]
    kwargs: dict[str, Any]
    request: Request
    is_async: bool
    embed: Any = None  # the message's canvas map: callbacks, errbacks, chain (issue 8)
    #: How ``update_state`` reports to the hub (None: this runner cannot: a plain executor).
    report: StateReporter | None = None
    #: The last ``update_state``: ``(state, content type, serialized meta)``.
    last_state: tuple[str, str, bytes] | None = None
    #: Whether the worker's INFO lines are written (asked once a task: ``task_received``,
    #: ``task_succeeded``; a worker at WARNING builds neither).
    logs_info: bool = True

    @property
    def limits(self) -> tuple[float | None, float | None]:
        """The effective ``(soft, hard)`` time limits of this call, in seconds."""
        return self.request.timelimit


@dataclass(slots=True)
class Result:
    """What the task's code did: state (SUCCESS, FAILURE, REJECTED, IGNORED) and value/error."""

    state: str
    retval: Any = None
    error: BaseException | None = None
    trace: str | None = None


#: What an invocation says before its block has ended (one shared, never changed).
_UNFINISHED: Final = Result(states.FAILURE)


@dataclass(slots=True)
class Invocation:
    """``with`` around one call of task code: prerun, context, outcome, postrun. Swallows.

    Set ``retval`` inside the block; after it, ``result`` says what happened. An exception
    leaving the block is the task's failure (never propagated), except an asyncio cancellation
    of the running asyncio task itself (pool shutdown), which propagates.
    """

    prepared: Prepared
    retval: Any = None
    hard_fired: bool = False
    result: Result = field(default_factory=lambda: _UNFINISHED)  # replaced as the block ends
    _token: contextvars.Token[Request | None] | None = None
    _report_token: contextvars.Token[StateReporter | None] | None = None
    _started: float = 0.0

    def __enter__(self) -> Invocation:
        p = self.prepared
        if signals.task_prerun.receivers:
            signals.task_prerun.send(
                sender=p.task, task_id=p.request.id, task=p.task, args=p.args, kwargs=p.kwargs
            )
        self._token = _current.set(p.request)
        self._report_token = state_reporter.set(p.report)
        self._started = time.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        p = self.prepared
        if self._token is not None:
            _current.reset(self._token)
        if self._report_token is not None:
            state_reporter.reset(self._report_token)
        if isinstance(exc, asyncio.CancelledError) and _cancelling():
            return False  # the pool is shutting down: not an outcome, let it go
        runtime = 0.0  # read only by the log lines: a success at WARNING writes none (0.3 us)
        if exc is not None or self.hard_fired or p.logs_info:
            runtime = round(time.monotonic() - self._started, 6)
        self.result = conclude(p, self.retval, exc, hard=self.hard_fired, runtime=runtime)
        r = self.result
        if overrides(p.task, "after_return"):
            _hook(
                p,
                "after_return",
                *(r.state, r.error or r.retval, p.request.id, p.args, p.kwargs, r.trace),
            )
        if signals.task_postrun.receivers:
            signals.task_postrun.send(
                sender=p.task,
                task_id=p.request.id,
                task=p.task,
                args=p.args,
                kwargs=p.kwargs,
                retval=self.result.retval,
                state=self.result.state,
            )
        return True


#: The hooks a task inherits from the base class, which do nothing (see :func:`overrides`).
_BASE_HOOKS: Final = {
    name: getattr(TaskCompat, name) for name in ("before_start", "on_success", "after_return")
}


def overrides(task: Task[Any, Any], hook: str) -> bool:
    """Whether ``task`` has its own ``hook`` (``before_start``, ``on_success``,
    ``after_return``): its class's, or one set on the instance. The base class's do nothing:
    not calling them saves a call each (and ``_hook``'s) on every task (issue 18)."""
    return hook in task.__dict__ or getattr(type(task), hook) is not _BASE_HOOKS[hook]


def _hook(p: Prepared, name: str, *args: Any) -> None:
    """Call the task's handler ``name`` (Celery's hooks); an error there is logged, not raised."""
    try:
        getattr(p.task, name)(*args)
    except Exception:  # a broken hook must not change the outcome
        _log.exception("task_hook_failed", task=p.task.name, task_id=p.request.id, hook=name)


def _cancelling() -> bool:
    """True inside an asyncio task that something asked to cancel."""
    try:
        current = asyncio.current_task()
    except RuntimeError:
        return False
    return current is not None and current.cancelling() > 0


def conclude(
    p: Prepared, retval: Any, exc: BaseException | None, *, hard: bool, runtime: float = 0.0
) -> Result:
    """Classify what the task's code did, log it as Celery's worker does (``task_succeeded`` at
    INFO, ``task_failed`` at ERROR with the traceback) and send task_failure for a failure."""
    trace = "".join(tb_module.format_exception(exc)) if exc is not None else None
    if hard:
        exc = TimeLimitExceeded(f"hard time limit ({p.limits[1]}s) exceeded")
    elif isinstance(exc, SoftInterrupt):
        exc = SoftTimeLimitExceeded(f"soft time limit ({p.limits[0]}s) exceeded")
    if exc is None:
        if p.logs_info:
            _log.info("task_succeeded", task=p.task.name, task_id=p.request.id, runtime=runtime)
        if overrides(p.task, "on_success"):
            _hook(p, "on_success", retval, p.request.id, p.args, p.kwargs)
        return Result(states.SUCCESS, retval)
    if isinstance(exc, TaskTerminated | Replaced):  # revoke(terminate=True), Task.replace:
        state = states.REVOKED if isinstance(exc, TaskTerminated) else IGNORED  # the executor
        return Result(state, error=exc)  # makes their outcomes
    if isinstance(exc, Ignore):
        return Result(IGNORED)
    if isinstance(exc, Reject):
        return Result(states.REJECTED, error=exc)
    if isinstance(exc, Retry):
        _log.info("task_retry", task=p.task.name, task_id=p.request.id, reason=str(exc))
        _hook(p, "on_retry", exc.exc or exc, p.request.id, p.args, p.kwargs, trace)
        signals.task_retry.send(
            sender=p.task, request=p.request, reason=exc.exc or exc, einfo=trace
        )
        return Result(states.RETRY, error=exc)
    expected = isinstance(exc, tuple(getattr(p.task, "throws", ()) or ()))  # Task.throws
    (_log.info if expected else _log.error)(
        "task_failed",
        task=p.task.name,
        task_id=p.request.id,
        runtime=runtime,
        error=f"{type(exc).__name__}: {exc}",
        exc_info=None if expected else exc,  # an expected error: no traceback (Celery's way)
    )
    _hook(p, "on_failure", exc, p.request.id, p.args, p.kwargs, trace)
    signals.task_failure.send(
        sender=p.task,
        task_id=p.request.id,
        exception=exc,
        args=p.args,
        kwargs=p.kwargs,
        traceback=trace,
        einfo=trace,
    )
    return Result(states.FAILURE, error=exc, trace=trace)
