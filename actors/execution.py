"""Running one delivered task: decode, look up, run under a guard -> a :class:`TaskOutcome`.

Whatever the task does, :meth:`TaskExecutor.execute` (a thread runs the task) and
:meth:`TaskExecutor.execute_async` (an event loop runs it) return a typed
:class:`~celeriac.actors.outcome.TaskOutcome` and never raise: a task exception is a FAILURE
outcome, an unknown task name or a refused content type is reported (signal, log, stored state)
and the slot goes on serving. This matters because an exception escaping a pykka ``tell``
handler kills the actor and silently drops the messages queued behind it (DESIGN.md section 7).
The caller turns the outcome into the wire message; nothing here knows the protocol.

Both entry points share every step but the call itself: ``_prepare`` (look up, decode, build
the :class:`Request`, ``task_received``), the call (:mod:`.calling`: an ``Invocation`` sends
``task_prerun``, sets the request's context variable, classifies what the code raised, sends
``task_failure`` and ``task_postrun``) and ``_complete`` (``task_success``, encode the result,
the outcome steps of :mod:`.execution_outcomes`). :meth:`TaskExecutor.cut_short` makes the
outcome of a task stopped from outside (a prefork child about to be killed) the same way.

Time limits are resolved in the core (:func:`celeriac._call_options.time_limits`) and enforced by
:mod:`celeriac.actors.watchdog` (a watchdog thread for code in threads, a timer for
coroutines); see there for what each pool can interrupt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celeriac import signals, states
from celeriac._builtins import builtin_task
from celeriac._call_options import time_limits
from celeriac._canvas_flow import (
    NESTING_KEY,
    REPLACE_KEY,
    Replaced,
    after_failure,
    after_success,
)
from celeriac._log import get_logger
from celeriac._protocol import Delivery, TaskState
from celeriac._protocol_compat import MAX_META
from celeriac._request import Request
from celeriac._serialization import dumps, loads
from celeriac._task import FunctionTask, Task
from celeriac._wire import task_fields
from celeriac.exceptions import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    NotRegistered,
    Reject,
    Retry,
    SerializationError,
)
from celeriac.result import storable

from .calling import invoke, invoke_async, is_coroutine_task
from .execution_outcomes import OutcomeSteps
from .invocation import IGNORED, Prepared, Result
from .outcome import TaskOutcome
from .terminate import TERMINATIONS, TaskTerminated, Terminations
from .watchdog import DEFAULT_WATCHDOG, Watchdog

if TYPE_CHECKING:
    from celeriac._app import App

__all__ = ["OnApply", "TaskExecutor"]

_log = get_logger("celeriac.worker")

#: Called with (task, args, kwargs) just before an event loop runs a task (pool signals).
OnApply = Callable[[Task[Any, Any], list[Any], dict[str, Any]], None]

#: The constructor's arguments of :class:`Request`, in the order ``_request`` passes them.
_REQUEST_FIELDS = (
    *("id", "task", "args", "kwargs", "retries", "hostname", "root_id", "parent_id", "group"),
    *("eta", "expires", "origin", "delivery_info", "headers", "timelimit", "called_directly"),
    *("is_eager", "ignore_result", "reply_to"),
)
if tuple(f.name for f in dataclasses.fields(Request) if f.init) != _REQUEST_FIELDS:
    raise ImportError("Request's fields changed: update TaskExecutor._request to match")


class TaskExecutor(OutcomeSteps):
    """Runs deliveries for one execution slot; holds that slot's class-based task instances.

    ``watchdog`` enforces time limits on code running in threads (the pools pass theirs); the
    settings ``task_soft_time_limit``/``task_time_limit`` of ``app`` are the default limits.
    Set ``enforce_hard_limit = False`` where something else enforces the hard limit (a prefork
    child, whose parent kills it): then only the soft limit is raised in the task's thread.
    """

    def __init__(
        self,
        app: App,
        *,
        hostname: str,
        accept: frozenset[str],
        result_serializer: str,
        ignore_result_default: bool = False,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.accept = accept
        self.result_serializer = result_serializer
        self.ignore_result_default = ignore_result_default
        self.watchdog = watchdog or DEFAULT_WATCHDOG
        self.enforce_hard_limit = True
        #: Where ``update_state`` messages go (the worker's connection); None: not reported.
        self.state_sink: Callable[[TaskState], None] | None = None
        #: Revoked ids and running tasks of this process (see actors/terminate.py).
        self.terminations: Terminations = TERMINATIONS
        self.conf = app.conf.freeze()
        self._instances: dict[str, Task[Any, Any]] = {}
        self._coroutine_tasks: dict[str, bool] = {}
        self._abandoned: set[asyncio.Future[Any]] = set()
        self._none: tuple[str, bytes] | None = None

    # -- entry points --------------------------------------------------------------------------

    def execute(self, delivery: Delivery) -> TaskOutcome:
        """Run one delivery in this thread and return its outcome; never raises."""
        try:
            prepared = self._prepare(delivery)
            if not isinstance(prepared, Prepared):
                return prepared
            try:
                return self._complete(prepared, self._invoke(prepared))
            finally:
                prepared.report = None  # see _prepare: no cycle left for the GC
        except Exception as exc:
            return self._internal_error(delivery, exc)

    async def execute_async(
        self,
        delivery: Delivery,
        *,
        threads: concurrent.futures.Executor | None = None,
        on_apply: OnApply | None = None,
    ) -> TaskOutcome:
        """Run one delivery on the running event loop; never raises (but a cancellation).

        An ``async def`` task runs on the loop; a sync task runs in ``threads`` (the loop's
        default executor if None), never on the loop. ``on_apply(task, args, kwargs)`` is
        called just before the task runs.
        """
        try:
            prepared = self._prepare(delivery)
            if not isinstance(prepared, Prepared):
                return prepared
            if on_apply is not None:
                on_apply(prepared.task, prepared.args, prepared.kwargs)
            try:
                if prepared.is_async:
                    result = await invoke_async(prepared, self.terminations, self._abandoned)
                else:
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(threads, self._invoke, prepared)
                return self._complete(prepared, result)
            finally:
                prepared.report = None  # see _prepare: no cycle left for the GC
        except Exception as exc:
            return self._internal_error(delivery, exc)

    # -- the shared steps ----------------------------------------------------------------------

    def _prepare(self, delivery: Delivery) -> Prepared | TaskOutcome:
        """Look up the task and decode the arguments; an outcome already if that fails."""
        message = delivery.task
        name, task_id = message.task, message.id
        task = self._lookup(name)
        if task is None:
            exc = NotRegistered.for_task(name, self.app.tasks, f"on worker {self.hostname}")
            _log.error("task_unknown", task=name, task_id=task_id, error=str(exc))
            signals.task_unknown.send(
                sender=None, name=name, id=task_id, message=task_fields(message), exc=exc
            )
            return self._failure(delivery, exc, None)
        try:
            args, kwargs, embed = loads(message.body, message.content_type, self.accept)
        except ContentDisallowed as exc:
            _log.error("task_rejected", task=name, task_id=task_id, reason=str(exc))
            signals.task_rejected.send(sender=None, message=task_fields(message), exc=exc)
            return self._failure(delivery, exc, None, state=states.REJECTED)
        except (DecodeError, SerializationError, ValueError, TypeError) as exc:
            _log.error("task_undecodable", task=name, task_id=task_id, reason=str(exc))
            return self._failure(delivery, exc, None)
        replaced_by = embed.get(REPLACE_KEY) if isinstance(embed, dict) else None
        if isinstance(replaced_by, str):  # Task.replace: run the replacement under this id
            replacing = self._replacing(replaced_by, delivery)
            if not isinstance(replacing, Task):
                return replacing
            task = replacing
        request = self._request_with(task, delivery, args, kwargs, embed)
        logs_info = _log.enabled("info")  # below the level (a worker at WARNING): build none
        if logs_info:
            _log.info("task_received", task=name, task_id=request.id)
        if signals.task_received.receivers:
            signals.task_received.send(sender=None, request=request)
        ended = self._revoked_or_expired(task, delivery, request, embed)
        if ended is not None:
            return ended
        is_async = self._coroutine_tasks.get(name)
        if is_async is None:
            is_async = self._coroutine_tasks[name] = is_coroutine_task(task)
        prepared = Prepared(task, delivery, args, kwargs, request, is_async, embed)
        prepared.logs_info = logs_info
        if self.state_sink is not None:
            # A cycle (prepared -> report -> prepared) that the entry points break when the
            # task ends: left to the GC, each task's request, arguments and all went with it,
            # ~8 objects a task that made the collector run every ~90 tasks (issue 18).
            prepared.report = functools.partial(self._report_state, prepared)
        return prepared

    def _request_with(
        self, task: Task[Any, Any], delivery: Delivery, args: Any, kwargs: Any, embed: Any
    ) -> Request:
        """The task's request, with what the message embeds (callbacks, errbacks, chain...)."""
        request = self._request(task, delivery, args, kwargs)
        if isinstance(embed, dict) and embed:
            request.callbacks = embed.get("callbacks") or None
            request.errbacks = embed.get("errbacks") or None
            request.chain = embed.get("chain") or None
            request.chord = embed.get("chord")
        if isinstance(embed, dict) and embed.get(NESTING_KEY):
            request.replaced_task_nesting = int(embed[NESTING_KEY])
        return request

    def cut_short(self, delivery: Delivery, exc: BaseException) -> TaskOutcome:
        """The outcome of a delivery still running that is stopped from outside its thread (a
        prefork child about to be killed for its hard time limit, or for a revoke with
        terminate): REVOKED for a :class:`TaskTerminated` (with ``task_revoked``), else a
        FAILURE with ``exc``; either way its errbacks are called and its chain ended, as when
        the same happens in a thread. Never raises."""
        try:
            task = self._lookup(delivery.task.task)
            if task is None:
                return self._failure(delivery, exc, None)
            message = delivery.task
            args, kwargs, embed = loads(message.body, message.content_type, self.accept)
            request = self._request_with(task, delivery, args, kwargs, embed)
            if isinstance(exc, TaskTerminated):
                reason = "terminated"
                return self._revoked(
                    task, delivery, request, embed, reason=reason, signum=exc.signum
                )
            outcome = self._failure(delivery, exc, None)
            return self._then(outcome, after_failure(embed, request, exc, None, self.app))
        except Exception as error:
            return self._internal_error(delivery, error)

    def _invoke(self, p: Prepared) -> Result:
        """Run the task's code in this thread (see :func:`.calling.invoke`); never raises."""
        return invoke(p, self.watchdog, self.terminations, self.enforce_hard_limit, self._abandoned)

    def _report_state(self, p: Prepared, task_id: str | None, state: str, meta: Any) -> None:
        """``update_state`` in a running task: serialize the meta, send it to the hub."""
        if task_id is not None and task_id != p.request.id:
            raise ValueError(
                f"update_state() sets the state of the running task ({p.request.id}), "
                f"not of {task_id}: the hub only takes it from the worker running a task"
            )
        ct, body = dumps(meta, self.result_serializer)
        if len(body) > MAX_META:
            raise ValueError(
                f"update_state() meta is {len(body)} bytes once serialized; at most {MAX_META} "
                "(progress reports are small: keep large data in the result)"
            )
        p.last_state = (state, ct, body)
        assert self.state_sink is not None
        self.state_sink(TaskState(p.request.id, p.delivery.tag, state, body, ct))

    def _replacing(self, name: str, delivery: Delivery) -> Task[Any, Any] | TaskOutcome:
        """The task that replaced the delivered one (Task.replace), or a failure if unknown."""
        task = self._lookup(name)
        if task is not None:
            return task
        error = NotRegistered.for_task(name, self.app.tasks, f"on worker {self.hostname}")
        return self._failure(delivery, error, None)

    def _revoked_or_expired(
        self, task: Task[Any, Any], delivery: Delivery, request: Request, embed: Any
    ) -> TaskOutcome | None:
        """A REVOKED outcome if this delivery was revoked or has expired (Celery's checks on
        receipt), else None: run it."""
        if self.terminations.is_revoked(request.id):
            return self._revoked(task, delivery, request, embed, reason="revoked")
        expires = delivery.task.expires
        if expires is not None and self.app.clock.time() >= expires:
            return self._revoked(task, delivery, request, embed, reason="expired", expired=True)
        return None

    def _lookup(self, name: str) -> Task[Any, Any] | None:
        instance = self._instances.get(name)
        if instance is not None:
            return instance
        task = self.app.tasks.get(name)
        if task is None:
            self.app.finalize()
            task = self.app.tasks.get(name) or builtin_task(self.app, name)
            if task is None:
                return None
        if not isinstance(task, FunctionTask):
            # Class-based task: this slot's own instance, started once, keeps its state.
            task = type(task)()
            task.on_start()
        self._instances[name] = task
        return task

    def _request(
        self, task: Task[Any, Any], delivery: Delivery, args: list[Any], kwargs: dict[str, Any]
    ) -> Request:
        m = delivery.task
        # Positional, in _REQUEST_FIELDS' order (checked on import): nineteen keywords cost
        # 0.5 us a task more (issue 18).
        return Request(
            m.id,
            task.name,
            tuple(args),
            kwargs,
            m.retries,
            self.hostname,
            m.root_id,
            m.parent_id,
            m.group,
            m.eta,
            m.expires,
            m.origin,
            {  # delivery_info
                "queue": delivery.queue,
                "routing_key": m.routing_key if m.routing_key is not None else delivery.queue,
                "exchange": m.exchange or "",
                "priority": m.priority,
                "redelivered": delivery.deliveries > 1,
            },
            dict(m.headers or {}),
            time_limits(task, m.timelimit, self.conf),
            False,  # called_directly
            False,  # is_eager
            m.ignore_result,
            m.origin if m.reply else None,  # reply_to
        )

    def _complete(self, p: Prepared, result: Result) -> TaskOutcome:
        """The outcome of a finished call (sending task_success)."""
        error = result.error
        if isinstance(error, TaskTerminated):  # revoked with terminate while running
            outcome = self._revoked(
                p.task, p.delivery, p.request, p.embed, reason="terminated", signum=error.signum
            )
        elif isinstance(error, Replaced):
            outcome = self._replace(p, error)
        else:
            outcome = self._concluded(p, result)
        if p.request.children:
            outcome = dataclasses.replace(outcome, children=tuple(p.request.children))
        return outcome

    def _concluded(self, p: Prepared, result: Result) -> TaskOutcome:
        """The outcome of a call that ran to its end (success, failure, retry, reject)."""
        delivery = p.delivery
        if result.state == IGNORED:  # Celery's pattern: the last update_state is the final one
            state, ct, body = p.last_state or (IGNORED, "application/json", b"null")
            return self._outcome(delivery, state, ct, body, self._store(delivery))
        if isinstance(result.error, Reject) and result.error.requeue:
            return self._requeue(delivery)
        if isinstance(result.error, Retry):
            return self._retry(p, result.error)
        if result.error is not None:
            outcome = self._failure(delivery, result.error, result.trace, state=result.state)
            sends = after_failure(p.embed, p.request, result.error, result.trace, self.app)
            return self._then(outcome, sends)
        if signals.task_success.receivers:
            signals.task_success.send(sender=p.task, result=result.retval)
        try:
            if result.retval is None:  # a task run for its effect: the same bytes every time
                ct, body = self._encoded_none()
            else:
                value = storable(result.retval)  # a returned AsyncResult: its id tuple
                ct, body = dumps(value, self.result_serializer, self.conf.result_compression)
        except (EncodeError, SerializationError) as exc:
            return self._failure(delivery, exc, None)
        outcome = self._outcome(delivery, states.SUCCESS, ct, body, self._store(delivery))
        # A task alone (its message embeds no callback, no chain): nothing to send after it.
        sends = after_success(p.embed, p.request, result.retval, self.app) if p.embed else []
        return self._then(outcome, sends)

    def _encoded_none(self) -> tuple[str, bytes]:
        """``None`` in the result serializer (encoded once per slot)."""
        if self._none is None:
            self._none = dumps(None, self.result_serializer, self.conf.result_compression)
        return self._none
