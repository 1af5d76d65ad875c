"""Running one delivered task: decode, look up, run under a guard, encode the outcome (pure).

Whatever the task does, :meth:`TaskExecutor.execute` (a thread runs the task) and
:meth:`TaskExecutor.execute_async` (an event loop runs it) return a ``DONE`` header and body and
never raise: a task exception is a FAILURE outcome, an unknown task name or a refused content
type is reported (signal, log, stored state) and the slot goes on serving. This matters because
an exception escaping a pykka ``tell`` handler kills the actor and silently drops the messages
queued behind it (DESIGN.md section 7).

Both entry points share every step but the call itself: ``_prepare`` (look up, decode, build
the :class:`Request`, ``task_received``), ``_Invocation`` (``task_prerun``, the request's
context variable, classifying what the code raised, ``task_failure``, ``task_postrun``) and
``_complete`` (``task_success``, encode the result).

Time limits
-----------
The effective limits of a call are ``[soft, hard]`` seconds, each chosen by Celery's
precedence: the call's ``apply_async(soft_time_limit=, time_limit=)`` (carried in the message
header ``timelimit``), else the task's ``soft_time_limit``/``time_limit`` option, else the
``task_soft_time_limit``/``task_time_limit`` setting. ``None`` or 0 means no limit.

* Code running in a thread (``-P threads``, ``-P solo``, and sync tasks on ``-P asyncio``):
  a :class:`Watchdog` thread raises :class:`~celeriac.exceptions.SoftTimeLimitExceeded` inside
  the task's thread when the soft limit passes (``PyThreadState_SetAsyncExc``), which the task
  can catch to clean up. At the hard limit it raises
  :class:`~celeriac.exceptions.TimeLimitExceeded` the same way, again every second until the
  task's code gives up, and the outcome is FAILURE with TimeLimitExceeded whatever the code
  did with it. A thread cannot be killed: an asynchronous exception is only seen when the
  thread runs Python bytecode, so a task blocked in C code or a system call (``time.sleep``,
  a socket read, a long numpy call) is interrupted only when that call returns, and its slot
  stays busy until then. ``-P prefork`` kills the child process at the hard limit instead.
* ``async def`` code (``-P asyncio``, and ``async def`` tasks on the threads pool, which run
  under ``asyncio.run`` in the slot thread): at the soft limit the coroutine's asyncio task is
  cancelled, so the coroutine sees :class:`asyncio.CancelledError` (with the message
  ``"SoftTimeLimitExceeded"``) at its current ``await``; it may catch it to clean up (and
  return a value, which then is the result); if the cancellation propagates, the outcome is
  FAILURE with SoftTimeLimitExceeded. At the hard limit the coroutine is cancelled again and
  the outcome, FAILURE with TimeLimitExceeded, is reported at once; a coroutine that ignores
  cancellation, or blocks the loop in sync code, cannot be stopped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import ctypes
import inspect
import threading
import traceback as tb_module
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog

from . import signals, states
from ._clock import SYSTEM_CLOCK, Clock
from ._messages import exception_info
from ._serialization import dumps, loads
from ._task import FunctionTask, Request, Task, _current, resolve_time_limits
from .exceptions import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    Ignore,
    NotRegistered,
    Reject,
    SerializationError,
    SoftTimeLimitExceeded,
    TimeLimitExceeded,
)

if TYPE_CHECKING:
    from ._app import App

__all__ = ["Outcome", "TaskExecutor", "Watchdog"]

_log = structlog.get_logger("celeriac.worker")

#: (DONE header, body): what an execution produces for the hub.
Outcome = tuple[dict[str, Any], bytes]

#: Called with (task, args, kwargs) just before an event loop runs a task (pool signals).
OnApply = Callable[[Task[Any, Any], list[Any], dict[str, Any]], None]

_IGNORED = "IGNORED"


# -- the watchdog: time limits for code that runs in a thread ------------------------------------


class _SoftInterrupt(SoftTimeLimitExceeded):
    """What the watchdog raises in a thread at the soft limit (instantiated with no argument)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("soft time limit exceeded",)))


class _HardInterrupt(TimeLimitExceeded):
    """What the watchdog raises in a thread at the hard limit (instantiated with no argument)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("hard time limit exceeded",)))


def _async_raise(ident: int, exc_type: type[BaseException] | None) -> None:
    """Make ``exc_type`` pending in thread ``ident`` (None clears a pending one)."""
    exc = ctypes.py_object(exc_type) if exc_type is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc)


@dataclass(eq=False, slots=True)
class _Armed:
    """The limits of the task running in one thread."""

    ident: int
    task_id: str
    soft_at: float | None
    hard_at: float | None
    active: bool = True
    soft_fired: bool = False
    hard_fired: bool = False

    def next_deadline(self) -> float | None:
        pending = [t for t in (None if self.soft_fired else self.soft_at, self.hard_at) if t]
        return min(pending) if pending else None


class Watchdog:
    """Time limits for tasks running in threads: one watchdog thread serves many task threads.

    A task thread calls :meth:`arm` before the task's code and :meth:`disarm` after it; in
    between, the watchdog raises ``SoftTimeLimitExceeded`` in that thread when the soft limit
    passes and ``TimeLimitExceeded`` when the hard limit passes (again every ``refire`` seconds
    while the code swallows it). Deadlines are read on the injected ``clock``; the watchdog
    thread (started at the first :meth:`arm`) looks at least every ``poll`` seconds, so a
    :class:`~celeriac._clock.FakeClock` moved forward is noticed, and :meth:`check` fires what
    is due right now (for tests).
    """

    def __init__(
        self, clock: Clock = SYSTEM_CLOCK, *, poll: float = 0.05, refire: float = 1.0
    ) -> None:
        self.clock = clock
        self.poll = poll
        self.refire = refire
        self._cond = threading.Condition()
        self._armed: dict[int, _Armed] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    def arm(self, soft: float | None, hard: float | None, task_id: str = "") -> None:
        """Start the limits (seconds from now) of the task about to run in this thread."""
        now = self.clock.monotonic()
        entry = _Armed(
            threading.get_ident(),
            task_id,
            now + soft if soft else None,
            now + hard if hard else None,
        )
        with self._cond:
            self._armed[entry.ident] = entry
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._loop, name="celeriac-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def disarm(self) -> _Armed | None:
        """End this thread's limits; what fired (None if nothing was armed). Never raises.

        A limit that fired just before this call may still be pending: it is dropped, or, if
        it lands while this runs, caught here (the returned flags tell what fired).
        """
        ident = threading.get_ident()
        while True:
            try:
                with self._cond:
                    entry = self._armed.get(ident)
                    if entry is not None:
                        entry.active = False
                if entry is not None and (entry.soft_fired or entry.hard_fired):
                    _async_raise(ident, None)
                return entry
            except (_SoftInterrupt, _HardInterrupt):
                continue  # fired before we deactivated it: landed here, now consumed

    def check(self) -> float | None:
        """Fire every limit that is due now; the next deadline (None: nothing armed)."""
        with self._cond:
            return self._check_locked()

    def wake(self) -> None:
        """Make the watchdog thread look at the clock now (after a fake clock moved)."""
        with self._cond:
            self._cond.notify()

    def stop(self) -> None:
        """Stop the watchdog thread (limits armed later start it again)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _check_locked(self) -> float | None:
        now = self.clock.monotonic()
        upcoming: float | None = None
        for entry in self._armed.values():
            if not entry.active:
                continue
            if entry.hard_at is not None and now >= entry.hard_at:
                if not entry.hard_fired:
                    _log.warning(
                        "hard_time_limit_exceeded",
                        task_id=entry.task_id,
                        note="TimeLimitExceeded raised in the task's thread; code blocked in C "
                        "or a system call only sees it when that call returns (-P prefork "
                        "kills the process instead)",
                    )
                entry.hard_fired = True
                entry.hard_at = now + self.refire
                _async_raise(entry.ident, _HardInterrupt)
            elif entry.soft_at is not None and not entry.soft_fired and now >= entry.soft_at:
                _log.warning("soft_time_limit_exceeded", task_id=entry.task_id)
                entry.soft_fired = True
                _async_raise(entry.ident, _SoftInterrupt)
            nxt = entry.next_deadline()
            if nxt is not None and (upcoming is None or nxt < upcoming):
                upcoming = nxt
        return upcoming

    def _loop(self) -> None:
        with self._cond:
            while not self._stopping:
                upcoming = self._check_locked()
                if upcoming is None:
                    self._cond.wait()
                else:
                    wait = upcoming - self.clock.monotonic()
                    self._cond.wait(max(0.0, min(wait, self.poll)))


_default_watchdog = Watchdog()
"""Serves executors made without one (the pools give theirs, on the app's clock)."""


# -- one execution ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Prepared:
    """A delivery ready to run: its task, decoded arguments, request and effective limits."""

    task: Task[Any, Any]
    header: dict[str, Any]
    meta: dict[str, Any]
    args: list[Any]
    kwargs: dict[str, Any]
    request: Request
    is_async: bool

    @property
    def limits(self) -> tuple[float | None, float | None]:
        return self.request.timelimit


@dataclass(slots=True)
class _Result:
    """What the task's code did: state (SUCCESS, FAILURE, REJECTED, IGNORED) and value/error."""

    state: str
    retval: Any = None
    error: BaseException | None = None
    trace: str | None = None


@dataclass(slots=True)
class _Invocation:
    """``with`` around one call of task code: prerun, context, outcome, postrun. Swallows.

    Set ``retval`` inside the block; after it, ``result`` says what happened. An exception
    leaving the block is the task's failure (never propagated), except an asyncio cancellation
    of the running asyncio task itself (pool shutdown), which propagates.
    """

    executor: TaskExecutor
    prepared: _Prepared
    retval: Any = None
    hard_fired: bool = False
    result: _Result = field(default_factory=lambda: _Result(states.FAILURE))
    _token: contextvars.Token[Request | None] | None = None

    def __enter__(self) -> _Invocation:
        p = self.prepared
        if signals.task_prerun.receivers:
            signals.task_prerun.send(
                sender=p.task, task_id=p.request.id, task=p.task, args=p.args, kwargs=p.kwargs
            )
        self._token = _current.set(p.request)
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
        if isinstance(exc, asyncio.CancelledError) and _cancelling():
            return False  # the pool is shutting down: not an outcome, let it go
        self.result = self.executor._conclude(p, self.retval, exc, hard=self.hard_fired)
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


def _cancelling() -> bool:
    """True inside an asyncio task that something asked to cancel."""
    try:
        current = asyncio.current_task()
    except RuntimeError:
        return False
    return current is not None and current.cancelling() > 0


def _is_coroutine_task(task: Task[Any, Any]) -> bool:
    fn = task.__dict__.get("fn") if isinstance(task, FunctionTask) else None
    return inspect.iscoroutinefunction(fn if fn is not None else task.run)


class TaskExecutor:
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
        self.watchdog = watchdog or _default_watchdog
        self.enforce_hard_limit = True
        self.default_limits: tuple[float | None, float | None] = (
            app.conf.task_soft_time_limit,
            app.conf.task_time_limit,
        )
        self._instances: dict[str, Task[Any, Any]] = {}
        self._coroutine_tasks: dict[str, bool] = {}
        self._abandoned: set[asyncio.Future[Any]] = set()

    # -- entry points --------------------------------------------------------------------------

    def execute(self, header: dict[str, Any], body: bytes, meta: dict[str, Any]) -> Outcome:
        """Run one delivery in this thread and return its outcome; never raises."""
        try:
            prepared = self._prepare(header, body, meta)
            if not isinstance(prepared, _Prepared):
                return prepared
            return self._complete(prepared, self._invoke(prepared))
        except Exception as exc:
            return self._internal_error(header, meta, exc)

    async def execute_async(
        self,
        header: dict[str, Any],
        body: bytes,
        meta: dict[str, Any],
        *,
        threads: concurrent.futures.Executor | None = None,
        on_apply: OnApply | None = None,
    ) -> Outcome:
        """Run one delivery on the running event loop; never raises (but a cancellation).

        An ``async def`` task runs on the loop; a sync task runs in ``threads`` (the loop's
        default executor if None), never on the loop. ``on_apply(task, args, kwargs)`` is
        called just before the task runs.
        """
        try:
            prepared = self._prepare(header, body, meta)
            if not isinstance(prepared, _Prepared):
                return prepared
            if on_apply is not None:
                on_apply(prepared.task, prepared.args, prepared.kwargs)
            if prepared.is_async:
                result = await self._invoke_async(prepared)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(threads, self._invoke, prepared)
            return self._complete(prepared, result)
        except Exception as exc:
            return self._internal_error(header, meta, exc)

    # -- the shared steps ----------------------------------------------------------------------

    def _prepare(
        self, header: dict[str, Any], body: bytes, meta: dict[str, Any]
    ) -> _Prepared | Outcome:
        """Look up the task and decode the arguments; an outcome already if that fails."""
        name = header["task"]
        task = self._lookup(name)
        if task is None:
            exc = NotRegistered(f"task {name!r} is not registered on {self.hostname}")
            _log.error("task_unknown", task=name, task_id=header["id"])
            signals.task_unknown.send(
                sender=None, name=name, id=header["id"], message=header, exc=exc
            )
            return self._failure(header, meta, exc, None)
        try:
            args, kwargs, _embed = loads(body, header["ct"], self.accept)
        except ContentDisallowed as exc:
            _log.error("task_rejected", task=name, task_id=header["id"], reason=str(exc))
            signals.task_rejected.send(sender=None, message=header, exc=exc)
            return self._failure(header, meta, exc, None, state=states.REJECTED)
        except (DecodeError, SerializationError, ValueError, TypeError) as exc:
            _log.error("task_undecodable", task=name, task_id=header["id"], reason=str(exc))
            return self._failure(header, meta, exc, None)
        request = self._request(task, header, meta, args, kwargs)
        if signals.task_received.receivers:
            signals.task_received.send(sender=None, request=request)
        is_async = self._coroutine_tasks.get(name)
        if is_async is None:
            is_async = self._coroutine_tasks[name] = _is_coroutine_task(task)
        return _Prepared(task, header, meta, args, kwargs, request, is_async)

    def _lookup(self, name: str) -> Task[Any, Any] | None:
        instance = self._instances.get(name)
        if instance is not None:
            return instance
        task = self.app.tasks.get(name)
        if task is None:
            self.app.finalize()
            task = self.app.tasks.get(name)
            if task is None:
                return None
        if not isinstance(task, FunctionTask):
            # Class-based task: this slot's own instance, started once, keeps its state.
            task = type(task)()
            task.on_start()
        self._instances[name] = task
        return task

    def _request(
        self,
        task: Task[Any, Any],
        header: dict[str, Any],
        meta: dict[str, Any],
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> Request:
        tl = header.get("timelimit") or (None, None)
        return Request(
            id=header["id"],
            task=header["task"],
            args=tuple(args),
            kwargs=kwargs,
            retries=header.get("retries", 0),
            hostname=self.hostname,
            root_id=header.get("root_id"),
            parent_id=header.get("parent_id"),
            group=header.get("group"),
            eta=header.get("eta"),
            expires=header.get("expires"),
            origin=header.get("origin"),
            delivery_info={
                "queue": meta.get("queue"),
                "routing_key": header.get("routing_key", meta.get("queue")),
                "exchange": header.get("exchange", ""),
                "priority": header.get("priority"),
                "redelivered": meta.get("deliveries", 1) > 1,
            },
            headers=header.get("headers") or {},
            timelimit=resolve_time_limits(task, tl[0], tl[1], *self.default_limits),
        )

    def _conclude(
        self, p: _Prepared, retval: Any, exc: BaseException | None, *, hard: bool
    ) -> _Result:
        """Classify what the task's code did (sending task_failure for a failure)."""
        trace = "".join(tb_module.format_exception(exc)) if exc is not None else None
        soft_limit, hard_limit = p.limits
        if hard:
            exc = TimeLimitExceeded(f"hard time limit ({hard_limit}s) exceeded")
        elif isinstance(exc, _SoftInterrupt):
            exc = SoftTimeLimitExceeded(f"soft time limit ({soft_limit}s) exceeded")
        if exc is None:
            return _Result(states.SUCCESS, retval)
        if isinstance(exc, Ignore):
            return _Result(_IGNORED)
        if isinstance(exc, Reject):
            return _Result(states.REJECTED, error=exc)
        _log.warning(
            "task_failed",
            task=p.task.name,
            task_id=p.request.id,
            error=f"{type(exc).__name__}: {exc}",
        )
        signals.task_failure.send(
            sender=p.task,
            task_id=p.request.id,
            exception=exc,
            args=p.args,
            kwargs=p.kwargs,
            traceback=trace,
            einfo=trace,
        )
        return _Result(states.FAILURE, error=exc, trace=trace)

    def _complete(self, p: _Prepared, result: _Result) -> Outcome:
        """The DONE header and body of a finished call (sending task_success)."""
        header, meta = p.header, p.meta
        if result.state == _IGNORED:
            return self._done(header, meta, states.SUCCESS, "application/json", b"null", False)
        if isinstance(result.error, Reject) and result.error.requeue:
            return self._requeue(header, meta)
        if result.error is not None:
            return self._failure(header, meta, result.error, result.trace, state=result.state)
        if signals.task_success.receivers:
            signals.task_success.send(sender=p.task, result=result.retval)
        store = not header.get("ignore_result", self.ignore_result_default)
        try:
            ct, body = dumps(result.retval, self.result_serializer)
        except (EncodeError, SerializationError) as exc:
            return self._failure(header, meta, exc, None)
        return self._done(header, meta, states.SUCCESS, ct, body, store)

    # -- calling the task's code ---------------------------------------------------------------

    def _invoke(self, p: _Prepared) -> _Result:
        """Run the task's code in this thread, under the watchdog; never raises."""
        with _Invocation(self, p) as call:
            if p.is_async:
                call.retval = asyncio.run(self._limited_coroutine(p, call))
            else:
                call.retval = self._run_in_thread(p, call)
        return call.result

    async def _invoke_async(self, p: _Prepared) -> _Result:
        """Run an ``async def`` task's coroutine on this loop, under its limits."""
        with _Invocation(self, p) as call:
            call.retval = await self._limited_coroutine(p, call)
        return call.result

    def _run_in_thread(self, p: _Prepared, call: _Invocation) -> Any:
        soft, hard = p.limits
        if not self.enforce_hard_limit:
            hard = None
        if not (soft or hard):
            return self._call(p)
        try:
            self.watchdog.arm(soft, hard, p.request.id)
            return self._call(p)
        finally:
            armed = self.watchdog.disarm()
            call.hard_fired = armed is not None and armed.hard_fired

    @staticmethod
    def _call(p: _Prepared) -> Any:
        """Call the task's code (a sync function returning a coroutine: run that too)."""
        retval = p.task.run(*p.args, **p.kwargs)
        return asyncio.run(retval) if inspect.iscoroutine(retval) else retval

    async def _limited_coroutine(self, p: _Prepared, call: _Invocation) -> Any:
        """Await the task's coroutine; soft limit: cancel it; hard limit: cancel and give up."""
        coro = p.task.run(*p.args, **p.kwargs)
        soft, hard = p.limits
        if not (soft or hard):
            return await coro
        inner: asyncio.Future[Any] = asyncio.ensure_future(coro)
        soft_hit = False

        def on_soft() -> None:
            nonlocal soft_hit
            if not inner.done():
                _log.warning("soft_time_limit_exceeded", task_id=p.request.id)
                soft_hit = True
                inner.cancel("SoftTimeLimitExceeded")

        timer = asyncio.get_running_loop().call_later(soft, on_soft) if soft else None
        try:
            done, _ = await asyncio.wait({inner}, timeout=hard or None)
        except asyncio.CancelledError:
            inner.cancel()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not done:
            _log.warning(
                "hard_time_limit_exceeded",
                task_id=p.request.id,
                note="the coroutine is cancelled and the task reported failed now",
            )
            call.hard_fired = True
            inner.cancel("TimeLimitExceeded")
            self._abandoned.add(inner)  # keep a reference while it unwinds
            inner.add_done_callback(self._abandoned.discard)
            return None
        try:
            return inner.result()
        except asyncio.CancelledError:
            if soft_hit:
                raise SoftTimeLimitExceeded(f"soft time limit ({soft}s) exceeded") from None
            raise

    # -- outcomes ------------------------------------------------------------------------------

    def _internal_error(
        self, header: dict[str, Any], meta: dict[str, Any], exc: Exception
    ) -> Outcome:
        _log.exception("task_internal_error", task_id=header.get("id"))
        trace = tb_module.format_exc()
        signals.task_internal_error.send(
            sender=None,
            task_id=header.get("id"),
            args=None,
            kwargs=None,
            request=None,
            exception=exc,
            traceback=trace,
            einfo=None,
        )
        return self._failure(header, meta, exc, trace)

    def _done(
        self,
        header: dict[str, Any],
        meta: dict[str, Any],
        state: str,
        content_type: str,
        body: bytes,
        store: bool,
    ) -> Outcome:
        done: dict[str, Any] = {"id": header["id"], "state": state, "ct": content_type}
        if not store:
            done["store"] = False
        tag = meta.get("tag")
        if tag is not None:
            done["tag"] = tag
        return done, body

    def _requeue(self, header: dict[str, Any], meta: dict[str, Any]) -> Outcome:
        """``Reject(requeue=True)``: a ``REJ`` header (it has ``requeue``, a DONE never does)
        that puts the message back in its queue at the hub; no state is stored."""
        _log.info("task_requeued", task=header["task"], task_id=header["id"])
        rej: dict[str, Any] = {"id": header["id"], "requeue": True}
        tag = meta.get("tag")
        if tag is not None:
            rej["tag"] = tag
        return rej, b""

    def _failure(
        self,
        header: dict[str, Any],
        meta: dict[str, Any],
        exc: BaseException,
        trace: str | None,
        *,
        state: str = states.FAILURE,
    ) -> Outcome:
        info = exception_info(exc, trace)
        try:
            ct, body = dumps(info, self.result_serializer)
        except SerializationError:
            info["exc_message"] = [repr(a) for a in exc.args]
            ct, body = dumps(info, self.result_serializer)
        store = not header.get("ignore_result", self.ignore_result_default)
        return self._done(header, meta, state, ct, body, store)
