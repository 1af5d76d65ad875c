"""``Task.replace`` by a chain, group or chord: sent now, joined by polling retries.

How it works
------------
A task replaced by one task signature is swapped at the hub for that task under its own id
(:class:`~celeriac._canvas_flow.Replaced`). A chain, group or chord cannot run under one id,
so :func:`plan_replace` freezes it (its final result: the chain's last step, the group's
members, the chord's body), sends it (confirmed before the replaced task is acknowledged, like
a chain's next step), and swaps the replaced task for the built-in :data:`JOIN_TASK` with the
ids to wait for, under the replaced task's id and with its callbacks, errbacks and chain.
The join does not block a slot: while the replacement is not ready it raises
:class:`~celeriac.exceptions.Retry` (the hub holds it, 0.1 s doubling to 2 s); once ready it
returns the replacement's value (a list for a group) or raises its exception, so
``AsyncResult(id).get()`` and the replaced task's callbacks see the replacement's outcome.
Like Celery's, a replaced task run twice (a crash before its acknowledgement) sends its
replacement twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ._canvas_flow import Send, replacement
from ._request import current_request
from ._signature import Signature
from .exceptions import Retry
from .result import GroupResult

if TYPE_CHECKING:
    from ._app import App
    from ._request import Request

__all__ = ["JOIN_TASK", "join", "plan_replace"]

#: The built-in task that waits (by retries) for a composite replacement's result.
JOIN_TASK: Final = "celeriac.replace_join"
_MAX_INTERVAL: Final = 2.0


def plan_replace(
    sig: Signature, embed: Any, request: Request, app: App
) -> tuple[list[Any], list[Any], dict[str, Any], dict[str, Any]]:
    """``(sends, args, kwargs, embed)``: what to send now and the body of the swapped message
    for ``sig`` replacing the call of ``request`` (whose canvas map is ``embed``)."""
    if type(sig) is Signature:
        args, kwargs, new_embed = replacement(sig, embed)
        return [], args, kwargs, new_embed
    frozen: Any = sig.freeze()  # a group freezes to a GroupResult
    target: Any = [r.id for r in frozen.results] if isinstance(frozen, GroupResult) else frozen.id
    lineage = {"parent_id": request.id, "root_id": request.root_id or request.id}
    args, kwargs, new_embed = replacement(Signature(JOIN_TASK, (target,), app=app), embed)
    return [Send(sig, (), lineage)], args, kwargs, new_embed


def join(app: App, target: str | list[str]) -> Any:
    """The built-in :data:`JOIN_TASK`: the replacement's value once it is ready."""
    ids = target if isinstance(target, list) else [target]
    results = [app.AsyncResult(i) for i in ids]
    if not all(r.ready() for r in results):
        request = current_request()
        attempt = request.retries if request is not None else 0
        wait = min(_MAX_INTERVAL, 0.1 * 2 ** min(attempt, 5))
        raise Retry("waiting for the replacement", when=app.clock.time() + wait)
    values = [r.get(disable_sync_subtasks=False) for r in results]  # a failure raises here
    return values if isinstance(target, list) else values[0]
