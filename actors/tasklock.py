"""The task option ``lock``: at most one run at a time per lock name, held at the hub.

::

    @app.task(lock="feed:{url}", lock_expire=600)            # skip while another run holds it
    def import_feed(url): ...

    @app.task(lock="feed:{url}", lock_busy="defer")          # or run it later instead
    def import_feed(url): ...

The name is ``lock`` formatted with the call's arguments by parameter name (``{url}``; a
positional-only call is bound to the function's signature first). Before the task's code runs,
the worker takes the hub lock (:class:`~celeriac._lock.Lock`, without blocking) for
``lock_expire`` seconds (default 600: longer than the task may run, so a crashed worker frees
it at most that long after). While another run holds it:

- ``lock_busy="skip"`` (the default, the memcache-lock recipe's behaviour): the run does not
  happen; it ends SUCCESS with the result None and the worker logs ``task_lock_busy``;
- ``lock_busy="defer"``: the call is retried later (a RETRY, countdown 1 s doubling up to 30 s);
  a deferral is never refused by ``max_retries`` (it does count in ``request.retries``).

The lock is released when the code returns or raises. A coroutine task run by a thread pool
holds it while its coroutine runs; on the asyncio pool (``-P asyncio``) the option is not
supported yet: such a run fails with ImproperlyConfigured instead of running unlocked.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any, Final

from celeriac._lock import DEFAULT_EXPIRE, LockNotOwnedError
from celeriac._log import get_logger
from celeriac._request import Request
from celeriac._task import Task
from celeriac.exceptions import ImproperlyConfigured

__all__ = ["lock_name", "lock_pattern", "refuse_lock_on_loop", "run_locked"]

_log = get_logger("celeriac.worker")

DEFER_FIRST: Final = 1.0
DEFER_CAP: Final = 30.0


def lock_name(
    task: Task[Any, Any], pattern: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """``pattern`` formatted with the call's arguments by name."""
    fields = dict(kwargs)
    wrapped = getattr(task, "__wrapped__", None)  # a function task: its function
    try:
        signature = inspect.signature(wrapped or task.run)
        if wrapped is not None and getattr(task, "bind", False):  # drop the task's ``self``
            signature = signature.replace(parameters=list(signature.parameters.values())[1:])
        bound = signature.bind_partial(*args, **kwargs)
        bound.apply_defaults()
        fields.update(bound.arguments)
    except (TypeError, ValueError):
        pass  # formatted from the keyword arguments and positions only
    try:
        return pattern.format(*args, **fields)
    except (KeyError, IndexError) as exc:
        raise ImproperlyConfigured(
            f"task {task.name}: lock {pattern!r} names {exc} which is not an argument of the call"
        ) from None


def lock_pattern(task: Task[Any, Any]) -> str | None:
    """The task's ``lock`` option: an instance's (``@app.task(lock=...)``) or its class's
    (``Task.lock`` is None): a plain attribute read, where a class without one made the
    look-up raise and swallow an AttributeError (0.3-0.7 us of every task's run, issue 18)."""
    return task.lock


def run_locked(task: Task[Any, Any], request: Request, call: Callable[[], Any]) -> Any:
    """Run ``call`` under the task's lock option (or straight away without one)."""
    pattern = lock_pattern(task)
    if not pattern:
        return call()
    name = lock_name(task, pattern, request.args, request.kwargs)
    expire = float(getattr(task, "lock_expire", DEFAULT_EXPIRE))
    lock = task.app.lock(name, expire=expire)
    if not lock.acquire(blocking=False):
        if getattr(task, "lock_busy", "skip") == "defer":
            delay = min(DEFER_CAP, DEFER_FIRST * 2 ** min(request.retries, 10))
            _log.info(
                "task_lock_busy", task=task.name, task_id=request.id, lock=name, deferred=delay
            )
            raise task.retry(countdown=delay, max_retries=request.retries + 1)
        _log.info("task_lock_busy", task=task.name, task_id=request.id, lock=name, skipped=True)
        return None
    try:
        return call()
    finally:
        with contextlib.suppress(LockNotOwnedError):  # expired while running: someone else's now
            lock.release()


def refuse_lock_on_loop(task: Task[Any, Any]) -> None:
    """The asyncio pool cannot take the option yet (acquiring would block the event loop)."""
    if lock_pattern(task):
        raise ImproperlyConfigured(
            f"task {task.name}: the lock option is not supported on the asyncio pool yet; use a "
            "threads or prefork worker, or `with app.lock(...)` in a sync task"
        )
