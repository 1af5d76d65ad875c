"""The rest of Celery's ``Task`` surface, as a mixin of :class:`~celeriac.Task`.

- The handler hooks, with Celery's names, arguments and order: ``before_start`` (just before
  the body; raising there fails the task), then ``on_success`` or ``on_failure``, then
  ``after_return``; ``on_retry`` is called by the retry machinery. They run in the worker.
  Subclass ``app.Task`` (or pass ``base=`` to ``@app.task``) to define them.
- ``delay_on_commit`` / ``apply_async_on_commit`` (Django): send once the transaction commits.
- Argument checking when a task is sent (``typing = True``, Celery's default):
  ``add.delay(5)`` raises ``TypeError`` in the caller, before anything is published.
- ``update_state(state=..., meta=...)`` in a task running on a worker: the custom state and
  its meta are seen by any client (``AsyncResult.state``/``.info``) while the task runs
  (:mod:`celeriac._protocol_compat`); raising ``Ignore`` afterwards keeps that last state as
  the task's final one (Celery's pattern for a custom final state).
- ``acks_late`` and ``acks_on_failure_or_timeout`` are True (celeriac's behaviour); False is
  refused with :data:`ACKS_LATE_FALSE`. ``store_errors_even_if_ignored`` is honoured.
- Attributes celeriac cannot honour raise :class:`NotImplementedError` saying what to use
  instead (:data:`REFUSED_TASK_ATTRIBUTES`), never a silent no-op.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from .exceptions import ImproperlyConfigured, MaxRetriesExceededError

if TYPE_CHECKING:
    from ._call_options import SendOptions

__all__ = [
    "ACKS_LATE_FALSE",
    "REFUSED_TASK_ATTRIBUTES",
    "StateReporter",
    "TaskCompat",
    "check_arguments",
    "state_reporter",
]

#: ``(task_id, state, meta)``: how ``update_state`` reaches the worker running the task.
StateReporter = Callable[[str | None, str, Any], None]
state_reporter: contextvars.ContextVar[StateReporter | None] = contextvars.ContextVar(
    "celeriac_state_reporter", default=None
)
"""Set by the worker around each task it runs (``actors/invocation.py``); None elsewhere."""

REFUSED_TASK_ATTRIBUTES: dict[str, str] = {
    "backend": "results live in the hub; use AsyncResult(id)",
    "send_event": "the hub publishes task events itself (`celeriac events`)",
    "send_events": "the hub publishes task events itself (`celeriac events`)",
    "Strategy": "the worker's execution strategy is not pluggable",
    "start_strategy": "the worker's execution strategy is not pluggable",
    "request_stack": "the current request is held in a context variable: use self.request",
    "push_request": "the current request is held in a context variable: use self.request",
    "pop_request": "the current request is held in a context variable: use self.request",
    "add_around": "wrap run() in a subclass of app.Task instead",
    "annotate": "use the task_annotations setting",
    "from_config": "task options are class attributes or @app.task(...) options",
    "on_bound": "override __init_subclass__ or use the app's on_after_finalize signal",
    "shadow_name": "task names are fixed: name=... on the task",
    "trail": "child results are always tracked: see AsyncResult.children",
    "add_trail": "child results are always tracked: see AsyncResult.children",
    "resultrepr_maxsize": "results are logged as structured fields, not as a truncated repr",
    "acks_on_failure": "a failed task is always acknowledged with state FAILURE; raise "
    "Reject(requeue=True) to give it back",
    "acks_on_timeout": "a timed-out task is always acknowledged with state FAILURE",
    "reject_on_worker_lost": "set task_reject_on_worker_lost (per worker node; on by default)",
    "retry_on_worker_lost": "see task_reject_on_worker_lost and broker_max_deliveries",
    "OperationalError": "errors reaching the hub are celeriac.exceptions.PublishError and "
    "TimeoutError",
    "Request": "the request of the running call is self.request (celeriac.Request)",
    "add_to_chord": "a chord's size is fixed when it is sent (the hub counts its header "
    "tasks); make the header a group that includes the extra work, or send a nested chord",
}
"""Celery task attributes celeriac refuses, with what to use instead."""


def _refused(name: str) -> NoReturn:
    raise NotImplementedError(f"celeriac has no Task.{name}: {REFUSED_TASK_ATTRIBUTES[name]}")


class TaskCompat:
    """Celery's task hooks and argument checking (mixed into :class:`~celeriac.Task`)."""

    #: Report STARTED when a worker begins this task (None: the task_track_started setting).
    track_started: ClassVar[bool | None] = None
    #: Default ``expires`` of each call (seconds from sending, or a datetime); a call's wins.
    expires: ClassVar[float | dt.datetime | None] = None
    #: Expected exceptions: a failure with one of these is logged at INFO, not WARNING.
    throws: ClassVar[tuple[type[BaseException], ...]] = ()
    #: The error ``retry()`` raises past ``max_retries`` (Celery's name on the Task).
    MaxRetriesExceededError = MaxRetriesExceededError
    #: Acknowledge after the task finished: always True in celeriac (False is refused).
    acks_late: ClassVar[bool] = True
    #: Acknowledge a task that failed or timed out (state FAILURE): always True in celeriac.
    acks_on_failure_or_timeout: ClassVar[bool] = True
    #: Store a FAILURE even with ignore_result (None: the task_store_errors_even_if_ignored
    #: setting decides).
    store_errors_even_if_ignored: ClassVar[bool | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        acks = {"acks_late": cls.acks_late, "acks_on_failure_or_timeout": None}
        acks["acks_on_failure_or_timeout"] = cls.acks_on_failure_or_timeout
        check_acks_late(acks)

    def before_start(self, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Called in the worker just before the task's body runs."""

    def on_success(
        self, retval: Any, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        """Called in the worker when the task returned ``retval``."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: str | None,
    ) -> None:
        """Called in the worker when the task raised ``exc`` (``einfo``: its traceback)."""

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: str | None,
    ) -> None:
        """Called in the worker when the task is to be retried."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: str | None,
    ) -> None:
        """Called in the worker after the task finished, whatever its state."""

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """Send the task with these arguments once the current Django transaction commits.

        Celery's ``delay_on_commit``: ``transaction.on_commit(lambda: task.delay(...))`` in one
        call, so a worker never looks for a row that is not committed yet. Returns None (the
        task id does not exist before the commit). Needs Django.
        """
        self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """``apply_async`` once the current Django transaction commits (see delay_on_commit)."""
        transaction = importlib.import_module("django.db.transaction")
        send = self.apply_async  # type: ignore[attr-defined]  # Task's, which mixes this in
        transaction.on_commit(functools.partial(send, args, kwargs, **options))

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None, **kw: Any
    ) -> None:
        """Set the running task's state (``"PROGRESS"``, any name) and meta (a value the result
        serializer can encode, at most 32 KiB): any client sees them through
        ``AsyncResult.state`` and ``.info`` until the task ends.

        Only the task running here can be updated (``task_id`` None or its own id). Outside a
        worker (a plain call of the task) there is no state to update: it does nothing.
        """
        if state is None:
            raise TypeError("update_state() needs a state, e.g. update_state(state='PROGRESS')")
        report = state_reporter.get()
        if report is not None:
            report(task_id, state, meta)

    def signature_from_request(
        self,
        request: Any = None,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        **extra_options: Any,
    ) -> Any:
        """A signature that sends this call again (Celery's, what ``retry`` builds): the same
        task id, lineage, group, callbacks, errbacks, rest of the chain, expiry, time limits,
        headers, priority and queue as ``request`` (default: the running one), with ``args`` /
        ``kwargs`` / ``queue`` / options replaced where given."""
        request = self.request if request is None else request  # type: ignore[attr-defined]
        soft, hard = request.timelimit or (None, None)
        delivery_info = request.delivery_info or {}
        expires = request.expires
        options: dict[str, Any] = {
            "task_id": request.id,
            "root_id": request.root_id,
            "parent_id": request.parent_id,
            "group_id": request.group,
            "chain": request.chain,
            "link": request.callbacks,
            "link_error": request.errbacks,
            "expires": None if expires is None else dt.datetime.fromtimestamp(expires, dt.UTC),
            "soft_time_limit": soft,
            "time_limit": hard,
            "headers": dict(request.headers) if request.headers else None,
            "ignore_result": request.ignore_result,
            "priority": delivery_info.get("priority"),
            "queue": queue or delivery_info.get("queue"),
        }
        options = {k: v for k, v in options.items() if v is not None}
        options.update(extra_options)
        sign = self.signature  # type: ignore[attr-defined]  # Task's, which mixes this in
        return sign(
            request.args if args is None else args,
            request.kwargs if kwargs is None else kwargs,
            **options,
        )

    subtask_from_request = signature_from_request  # Celery's old name

    if not TYPE_CHECKING:  # hidden from type checkers: a typo stays a type error

        def __getattr__(self, name: str) -> Any:
            if name in REFUSED_TASK_ATTRIBUTES:
                _refused(name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def check_arguments(
    task: Any, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None
) -> None:
    """Raise ``TypeError`` if ``task`` cannot be called with these arguments (``typing``)."""
    if not getattr(task, "typing", True):
        return
    fn = task.__dict__.get("fn")
    if fn is None:  # a class-based task: its run method, without self
        signature, bounds = _call_check(type(task).run, True)
    else:
        signature, bounds = _call_check(fn, bool(task.__dict__.get("bind")))
    if signature is None:
        return  # a callable without an introspectable signature: nothing to check
    if not kwargs and bounds[0] <= len(args or ()) <= bounds[1]:
        return  # positional arguments only: counting them is enough (bind costs ~2 us)
    try:
        signature.bind(*(args or ()), **(kwargs or {}))
    except TypeError as exc:
        raise TypeError(f"{task.name}() {exc}") from None


@functools.lru_cache(maxsize=4096)
def _call_signature(fn: Any, *, drop_first: bool) -> inspect.Signature | None:
    """The signature callers must match (made once per function: this is on every send)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if drop_first:
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    return signature


@functools.lru_cache(maxsize=4096)
def _call_check(fn: Any, drop_first: bool) -> tuple[inspect.Signature | None, tuple[float, float]]:
    """:func:`_call_signature`, and how many positional arguments alone satisfy it
    (``(least, most)``; ``(1, 0)``, none, when it has keyword-only parameters without
    defaults). Keyed by the function, positionally: the cheapest lookup on every send."""
    signature = _call_signature(fn, drop_first=drop_first)
    if signature is None:
        return None, (1, 0)
    least, most = 0, 0.0
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            most = float("inf")
        elif param.kind is param.KEYWORD_ONLY:
            if param.default is param.empty:
                return signature, (1, 0)
        elif param.kind is not param.VAR_KEYWORD:  # positional-only or positional-or-keyword
            least += param.default is param.empty
            most += 1
    return signature, (least, most)


def prepare_send(
    task: Any, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None, options: SendOptions
) -> None:
    """Before ``apply_async`` sends: check the arguments, apply the task's default ``expires``."""
    check_arguments(task, args, kwargs)
    if options.get("expires") is None and getattr(task, "expires", None) is not None:
        options["expires"] = task.expires


ACKS_LATE_FALSE = (
    "acks_late=False (task_acks_late=False) is not supported: celeriac acknowledges a task "
    "after it finishes (at-least-once); make the task idempotent, or ignore_result=True if it "
    "is fire-and-forget"
)
"""The one refusal of early acknowledgement: the task option and the setting say the same."""


ACKS_ON_FAILURE_FALSE = (
    "acks_on_failure_or_timeout=False is not supported: a task that raised or timed out is "
    "acknowledged with state FAILURE; raise celeriac.exceptions.Reject(requeue=True) to give "
    "its message back instead"
)


def check_acks_late(options: Mapping[str, Any]) -> None:
    """Refuse ``acks_late=False`` (celeriac always acknowledges after the task finishes) and
    ``acks_on_failure_or_timeout=False`` (a failure is acknowledged with its state)."""
    if options.get("acks_late") is False:
        raise ImproperlyConfigured(ACKS_LATE_FALSE)
    if options.get("acks_on_failure_or_timeout") is False:
        raise ImproperlyConfigured(ACKS_ON_FAILURE_FALSE)


def check_acks_late_setting(value: Any) -> bool:
    """The check of ``task_acks_late``: True only, with the same refusal as the task option."""
    if value is True:
        return True
    if value is False:
        raise ImproperlyConfigured(ACKS_LATE_FALSE)
    raise ImproperlyConfigured(f"setting 'task_acks_late' must be a boolean, got {value!r}")
