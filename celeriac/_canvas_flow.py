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

if TYPE_CHECKING:
    from ._app import App
    from ._task import Request

__all__ = ["FAIL_TASK", "Send", "after_failure", "after_success", "embed_of", "send_all"]

#: The built-in task that ends a chain step FAILURE because an earlier step failed.
FAIL_TASK = "celeriac.chain_failed"


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
    lineage = _lineage(request, app)
    sends = [
        _send(maybe_signature(eb, app), (request.id,), lineage)
        for eb in embed.get("errbacks") or ()
    ]
    info = exception_info(exc, trace)
    for step in embed.get("chain") or ():
        sig = maybe_signature(step, app)
        if sig.id is None:
            continue
        fail = Signature(FAIL_TASK, (info,), app=app)
        sends.append(Send(fail, (), {**lineage, "task_id": sig.id, "ignore_result": False}))
    return sends


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
