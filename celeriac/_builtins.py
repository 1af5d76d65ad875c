"""Tasks every worker knows without registering them: the canvas's helpers.

``celeriac.map`` / ``celeriac.starmap`` run one task over many argument sets in one message
(``task.map``, ``task.starmap``, ``task.chunks``); ``celeriac.chain_failed`` ends a chain step
FAILURE with the exception of the step that failed before it (see :mod:`celeriac.canvas`).
They are looked up by the executor when a name is not in the App's registry, so they never
show in ``app.tasks``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import states
from ._canvas_flow import FAIL_TASK, after_failure, send_all
from ._canvas_shapes import COLLECT_TASK
from ._chain_group import chain
from ._chord import UNLOCK_TASK
from ._replace import JOIN_TASK, join
from ._request import Request
from ._resultset import GROUP_SAVE_TASK
from ._signature import maybe_signature
from ._task import FunctionTask, Task
from .exceptions import ChordError
from .result import AsyncResult, rebuild_exception

if TYPE_CHECKING:
    from ._app import App

__all__ = ["builtin_task", "unlock"]

#: Seconds the unlock waits for the hub to confirm what it sends.
_RESULT_WAIT = 30.0
#: The least wait for one header result once result_chord_join_timeout has passed.
_MIN_WAIT = 0.1


def unlock(app: App, header_ids: list[str], body: Mapping[str, Any]) -> None:
    """The worker's part of a chord (task ``celeriac.chord_unlock``): read the header results
    in order and send the body with them, or end the body with a ChordError and call its
    errbacks if one failed. Waits for the hub to confirm before the unlock is acknowledged."""
    sig = maybe_signature(body, app=app)
    values = []
    deadline = time.monotonic() + float(app.conf.result_chord_join_timeout)
    for task_id in header_ids:
        result: AsyncResult[Any] = app.AsyncResult(task_id)
        wait = max(_MIN_WAIT, deadline - time.monotonic())  # result_chord_join_timeout, in all
        value = result.get(timeout=wait, propagate=False, disable_sync_subtasks=False)
        if result.state in states.EXCEPTION_STATES:
            exc = ChordError(f"Dependency {task_id} raised {value!r}")
            steps = sig.tasks if isinstance(sig, chain) else [sig]
            request = Request(id=steps[-1].id or "", task=sig.task)
            embed = {"errbacks": sig.options.get("link_error"), "chain": [dict(s) for s in steps]}
            send_all(after_failure(embed, request, exc, None, app))
            app.flush(_RESULT_WAIT)
            return
        values.append(value)
    # Its parent is the last header task (Celery's: the header task that completed the chord).
    sig.apply_async((values,), parent_id=header_ids[-1] if header_ids else None)
    app.flush(_RESULT_WAIT)


def _map(app: App) -> Callable[..., list[Any]]:
    def run(task: str, it: list[Any]) -> list[Any]:
        fn = app.get_task(task)
        return [fn(item) for item in it]

    return run


def _starmap(app: App) -> Callable[..., list[Any]]:
    def run(task: str, it: list[Any]) -> list[Any]:
        fn = app.get_task(task)
        return [fn(*item) for item in it]

    return run


def _chain_failed(app: App) -> Callable[..., None]:
    def run(info: Any) -> None:
        raise rebuild_exception(info)

    return run


def _unlock(app: App) -> Callable[..., None]:
    def run(header_ids: list[str], body: dict[str, Any]) -> None:
        unlock(app, header_ids, body)

    return run


def _replace_join(app: App) -> Callable[..., Any]:
    def run(target: Any) -> Any:
        return join(app, target)

    return run


def _group_save(app: App) -> Callable[..., list[str]]:
    def run(ids: list[str]) -> list[str]:
        return ids

    return run


def _collect(app: App) -> Callable[..., list[Any]]:
    def run(values: list[Any]) -> list[Any]:
        return values

    return run


_BUILTINS: dict[str, Callable[[App], Callable[..., Any]]] = {
    COLLECT_TASK: _collect,
    "celeriac.map": _map,
    "celeriac.starmap": _starmap,
    FAIL_TASK: _chain_failed,
    UNLOCK_TASK: _unlock,
    GROUP_SAVE_TASK: _group_save,
    JOIN_TASK: _replace_join,
}


def builtin_task(app: App, name: str) -> Task[Any, Any] | None:
    """The built-in task of that name for ``app``, or None."""
    make = _BUILTINS.get(name)
    if make is None:
        return None
    return FunctionTask(app, make(app), name=name)
