"""Calling a task's code: in a thread under the watchdog, or as a coroutine under its limits.

The executor (:mod:`.execution`) has looked the task up and decoded its arguments (a
:class:`~.invocation.Prepared`); here its code runs inside an :class:`~.invocation.Invocation`
(signals, the request's context, what it raised) and the process's
:data:`~.terminate.TERMINATIONS` (a revoke with terminate stops it), with its soft and hard
time limits armed (:mod:`.watchdog`), its ``lock=`` held (:mod:`.tasklock`) and its
``autoretry_for`` applied. Each entry point returns a :class:`~.invocation.Result`.
"""

from __future__ import annotations

import asyncio
import inspect
from types import CoroutineType
from typing import Any

from celeriac._retry import autoretry
from celeriac._task import FunctionTask, Task

from .invocation import Invocation, Prepared, Result, overrides
from .tasklock import lock_pattern, refuse_lock_on_loop, run_locked
from .terminate import Terminations
from .watchdog import Watchdog, run_limited

__all__ = ["invoke", "invoke_async", "is_coroutine_task"]


def _autoretry(p: Prepared, exc: Exception) -> None:
    """Raise a :class:`Retry` (or MaxRetriesExceededError) instead of ``exc`` if the task's
    ``autoretry_for`` lists it; return to let ``exc`` propagate otherwise."""
    if not p.task.autoretry_for:
        return
    now = p.task.app.clock.time()
    instead = autoretry(p.task, p.request, exc, now)
    if instead is not exc:
        raise instead from exc


def is_coroutine_task(task: Task[Any, Any]) -> bool:
    """Whether the task's code is an ``async def`` (it runs on an event loop)."""
    fn = task.__dict__.get("fn") if isinstance(task, FunctionTask) else None
    return inspect.iscoroutinefunction(fn if fn is not None else task.run)


def invoke(
    p: Prepared,
    watchdog: Watchdog,
    terminations: Terminations,
    enforce_hard_limit: bool,
    abandoned: set[asyncio.Future[Any]],
) -> Result:
    """Run the task's code in this thread, under the watchdog (its hard limit only if
    ``enforce_hard_limit``); never raises."""
    with Invocation(p) as call, terminations.in_thread(p.request.id):
        if p.is_async:
            call.retval = asyncio.run(_limited_coroutine(p, call, abandoned))
        else:
            call.retval = _run_in_thread(p, call, watchdog, enforce_hard_limit)
    return call.result


async def invoke_async(
    p: Prepared, terminations: Terminations, abandoned: set[asyncio.Future[Any]]
) -> Result:
    """Run an ``async def`` task's coroutine on this loop, under its limits; never raises."""
    with Invocation(p) as call, terminations.in_task(p.request.id):
        call.retval = await _limited_coroutine(p, call, abandoned)
    return call.result


def _run_in_thread(
    p: Prepared, call: Invocation, watchdog: Watchdog, enforce_hard_limit: bool
) -> Any:
    soft, hard = p.request.timelimit  # (p.limits, without the property's call)
    if not enforce_hard_limit:
        hard = None
    if not (soft or hard):
        return _call(p)
    try:
        watchdog.arm(soft, hard, p.request.id)
        return _call(p)
    finally:
        armed = watchdog.disarm()
        call.hard_fired = armed is not None and armed.hard_fired


def _call(p: Prepared) -> Any:
    """Call the task's code (a sync function returning a coroutine: run that too)."""
    task = p.task
    if overrides(task, "before_start"):
        task.before_start(p.request.id, p.args, p.kwargs)
    try:
        if lock_pattern(task):  # the task option lock= (tasklock.py)
            return run_locked(task, p.request, lambda: _run(task, p.args, p.kwargs))
        return _run(task, p.args, p.kwargs)  # no closure nor lock look-up again (issue 18)
    except Exception as exc:
        _autoretry(p, exc)
        raise


def _run(task: Task[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    retval = task.run(*args, **kwargs)
    return asyncio.run(retval) if type(retval) is CoroutineType else retval


async def _limited_coroutine(
    p: Prepared, call: Invocation, abandoned: set[asyncio.Future[Any]]
) -> Any:
    """Await the task's coroutine under its limits (see :func:`run_limited`)."""
    soft, hard = p.limits
    p.task.before_start(p.request.id, p.args, p.kwargs)
    refuse_lock_on_loop(p.task)
    coro = p.task.run(*p.args, **p.kwargs)
    try:
        retval, call.hard_fired = await run_limited(coro, soft, hard, p.request.id, abandoned)
    except Exception as exc:
        _autoretry(p, exc)
        raise
    return retval
