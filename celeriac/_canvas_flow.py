"""What a worker sends after a task ends: the next chain step, callbacks, errbacks (pure).

A task message's body is ``[args, kwargs, embed]`` (Celery protocol v2); ``embed`` holds
``callbacks`` (``link``), ``errbacks`` (``link_error``) and ``chain`` (the steps still to run,
last step first), as signature dicts. :func:`after_success` and :func:`after_failure` turn that
and the finished request into :class:`Send` values; the executor sends them through its App and
waits for the hub to confirm them before it acknowledges the task, so a crash in between cannot
lose the next step (running the task again re-sends the same frozen ids, which the hub drops as
duplicates). See :mod:`celeriac.canvas` for the whole story.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._messages import exception_info
from ._signature import Signature, maybe_signature
from .exceptions import Ignore

if TYPE_CHECKING:
    from ._app import App
    from ._request import Request

__all__ = [
    "FAIL_TASK",
    "NESTING_KEY",
    "REPLACE_KEY",
    "Replaced",
    "Send",
    "after_failure",
    "after_success",
    "embed_of",
    "replacement",
    "send_all",
]

#: The built-in task that ends a chain step FAILURE because an earlier step failed.
FAIL_TASK = "celeriac.chain_failed"
#: The ``embed`` key naming the task that replaced the message's own (``Task.replace``).
REPLACE_KEY = "replaced_by"
#: The ``embed`` key counting the replacements (``request.replaced_task_nesting``).
NESTING_KEY = "replaced_task_nesting"


class Replaced(Ignore):
    """Raised by ``Task.replace(sig)``: the worker swaps the running task for ``sig``.

    How it works: the outcome is a RETRY-like swap at the hub (same id, run again at once,
    in the same queue) whose body is ``sig``'s arguments and whose ``embed`` names ``sig``'s
    task (:data:`REPLACE_KEY`) and keeps the original callbacks, errbacks and chain (plus
    ``sig``'s own links). The worker that takes it runs ``sig``'s task under the original id,
    so ``AsyncResult(id).get()`` returns the replacement's result and a chain goes on from
    it. ``request.retries`` counts the swap (it is one more than the replaced call's).
    """

    def __init__(self, sig: Signature) -> None:
        super().__init__(f"replaced by {sig.task}")
        self.sig = sig


def replacement(sig: Signature, embed: Any) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """The body ``[args, kwargs, embed]`` of the message that runs ``sig`` in place of the
    call whose canvas map is ``embed``."""
    old = dict(embed) if isinstance(embed, Mapping) else {}
    callbacks = list(old.get("callbacks") or ()) + (_dicts(sig.options.get("link")) or [])
    errbacks = list(old.get("errbacks") or ()) + (_dicts(sig.options.get("link_error")) or [])
    new = {
        "callbacks": callbacks or None,
        "errbacks": errbacks or None,
        "chain": old.get("chain"),
        "chord": old.get("chord"),
        REPLACE_KEY: sig.task,
        NESTING_KEY: int(old.get(NESTING_KEY) or 0) + 1,
    }
    return list(sig.args), dict(sig.kwargs), new


@dataclass(frozen=True, slots=True)
class Send:
    """One publish to make: ``sig`` called with ``args`` prepended and these options."""

    sig: Signature
    args: tuple[Any, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


def embed_of(options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``embed`` map of a message from its send options (Celery's field names); ``{}``
    for a plain call (no callbacks, errbacks or chain), which keeps plain messages short."""
    if not (options.get("link") or options.get("link_error") or options.get("chain")):
        return {}
    return {
        "callbacks": _dicts(options.get("link")),
        "errbacks": _dicts(options.get("link_error")),
        "chain": _dicts(options.get("chain")),
        "chord": None,
    }


def after_success(embed: Any, request: Request, retval: Any, app: App | None) -> list[Send]:
    """The next chain step (with the rest of the chain) and the callbacks, given ``retval``."""
    embed = embed if isinstance(embed, Mapping) else {}
    if not embed.get("callbacks") and not embed.get("chain"):
        return []  # the common case, a task alone: nothing follows it
    lineage = _lineage(request, app)
    sends = [
        _send(maybe_signature(cb, app), (retval,), lineage) for cb in embed.get("callbacks") or ()
    ]
    steps = list(embed.get("chain") or ())
    if steps:
        nxt = maybe_signature(steps.pop(), app)
        sends.append(_send(nxt, (retval,), {**lineage, "chain": steps} if steps else lineage))
    return sends


def after_failure(
    embed: Any, request: Request, exc: BaseException, trace: str | None, app: App | None
) -> list[Send]:
    """The errbacks (called with the failed task's id) and a FAILURE for every later step."""
    embed = embed if isinstance(embed, Mapping) else {}
    if not embed.get("errbacks") and not embed.get("chain"):
        return []
    lineage = _lineage(request, app)
    sends = [
        _send(maybe_signature(eb, app), (request.id,), lineage)
        for eb in embed.get("errbacks") or ()
    ]
    info = exception_info(exc, trace)
    for step in embed.get("chain") or ():
        for sig in _ends(maybe_signature(step, app)):
            fail = Signature(FAIL_TASK, (info,), app=app)
            options = {**lineage, "task_id": sig.id, "ignore_result": False}
            if sig.options.get("chord_id"):  # a header task of a chord: it still counts there
                options["chord_id"] = sig.options["chord_id"]
            sends.append(Send(fail, (), options))
    return sends


def _ends(sig: Signature) -> list[Signature]:
    """The frozen tasks whose results stand for ``sig``'s: itself, a group's members, a
    chain's last step, a chord's body (Celery marks them all failed when an earlier step
    fails, so ``get()`` on any of them raises instead of waiting)."""
    kind = sig.subtask_type
    if kind == "group":
        return [
            end
            for member in sig.kwargs.get("tasks", ())
            for end in _ends(maybe_signature(member, sig._app))
        ]
    if kind == "chain":
        steps = sig.kwargs.get("tasks") or ()
        return _ends(maybe_signature(steps[-1], sig._app)) if steps else []
    if kind == "chord":
        body = sig.kwargs.get("body")
        return _ends(maybe_signature(body, sig._app)) if body is not None else []
    return [sig] if sig.id is not None else []


def send_all(sends: list[Send]) -> None:
    """Publish each send (the caller flushes before acknowledging its task)."""
    for s in sends:
        s.sig.apply_async(s.args, **s.options)


def _lineage(request: Request, app: App | None) -> dict[str, Any]:
    lineage: dict[str, Any] = {"parent_id": request.id, "root_id": request.root_id or request.id}
    if app is not None and app.conf.task_inherit_parent_priority:
        priority = (request.delivery_info or {}).get("priority")
        if isinstance(priority, int):
            lineage["priority"] = priority
    return lineage


def _send(sig: Signature, args: tuple[Any, ...], lineage: dict[str, Any]) -> Send:
    """A send with the lineage's options; a priority the signature gives wins over the one
    inherited (task_inherit_parent_priority)."""
    if "priority" in lineage and sig.options.get("priority") is not None:
        lineage = {k: v for k, v in lineage.items() if k != "priority"}
    return Send(sig, args, lineage)


def _dicts(value: Any) -> list[dict[str, Any]] | None:
    if not value:
        return None
    items = [value] if isinstance(value, Mapping) else list(value)
    return [dict(item) for item in items]
