"""How canvas shapes are rewritten before they are sent (pure; Celery's rules).

A chain's nested chains are flattened; a group followed by more steps becomes a chord whose
body is the rest, and a chord followed by more steps gets them appended to its body
(:func:`fold`); a group inside a group or a chord's header is unrolled into its members
(:func:`unroll`); where one result is needed (the last step of a chain in a chord's header)
a group becomes a chord whose body, :data:`COLLECT_TASK`, returns the list under the group's
id (:func:`single_result`). The signature classes register themselves in :data:`KINDS` (this
module imports none of them, so they can import it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ._signature import Signature

__all__ = [
    "COLLECT_TASK",
    "KINDS",
    "NO_STAMPING",
    "as_list",
    "deep_copy",
    "flatten",
    "fold",
    "single_result",
    "unroll",
]

#: The signature class of each ``subtask_type`` (None: a task), filled by the canvas modules.
KINDS: dict[str | None, Any] = {}
#: The built-in task that returns the list it is given: the body that turns a group into one
#: result where one is needed (a chain ending in a group, in a chord's header).
COLLECT_TASK = "celeriac.group_collect"
#: Why canvas stamping (``sig.stamp``, ``StampingVisitor``, ``revoke_by_stamped_headers``)
#: is refused.
NO_STAMPING = (
    "celeriac has no canvas stamping: a stamp would be a message header the hub does not "
    "index, so a revoke by stamp could not be held durably at the hub as a revoke by id is; "
    "pass such values with apply_async(headers=...) or as arguments, and revoke by id "
    "(GroupResult.revoke() revokes a whole group)"
)


def _is(sig: Any, kind: str) -> bool:
    cls = KINDS.get(kind)
    return cls is not None and isinstance(sig, cls)


def _tasks(sig: Signature) -> list[Signature]:
    """A chain's steps or a group's members (those classes have ``tasks``)."""
    return list(cast(Any, sig).tasks)


def single_result(step: Signature) -> Signature:
    """``step`` as something with one result: a group becomes a chord of its members whose
    body (:data:`COLLECT_TASK`, under the group's id) returns their list, so a chain ending in
    a group counts once in a chord's header and gives the list (Celery's ``[[a, b]]``)."""
    make_chord = KINDS.get("chord")
    if not _is(step, "group") or make_chord is None:
        return step
    collect = KINDS[None](COLLECT_TASK, app=step._app, task_id=step.freeze().id)
    result: Signature = make_chord(step.kwargs.get("tasks", ()), collect, app=step._app)
    return result


def unroll(members: Iterable[Signature]) -> list[Signature]:
    """``members`` with every group among them replaced by its own members, recursively
    (Celery unrolls a group in a group or in a chord's header: its tasks run side by side)."""
    flat: list[Signature] = []
    for member in members:
        if _is(member, "group"):
            flat.extend(unroll(_tasks(member)))
        else:
            flat.append(member)
    return flat


def flatten(steps: Iterable[Signature]) -> list[Signature]:
    """A chain's steps with the steps of the chains among them in their place."""
    return list(
        itertools.chain.from_iterable(flatten(_tasks(s)) if _is(s, "chain") else [s] for s in steps)
    )


def fold(steps: list[Signature]) -> list[Signature]:
    """A group followed by more steps becomes a chord whose body is the rest (as Celery does);
    a chord followed by more steps gets them appended to its body."""
    make_chord, make_chain = KINDS.get("chord"), KINDS["chain"]
    if make_chord is None:
        return steps
    for i, step in enumerate(steps[:-1]):
        rest = steps[i + 1 :]
        if _is(step, "group"):
            body = rest[0] if len(rest) == 1 else make_chain(*rest, app=step._app)
            return [*steps[:i], make_chord(step.kwargs.get("tasks", ()), body, app=step._app)]
        if step.subtask_type == "chord":
            body = make_chain(step.kwargs["body"], *rest, app=step._app)
            return [*steps[:i], make_chord(step.kwargs["header"], body, app=step._app)]
    return steps


def as_list(value: Any) -> list[Any]:
    """``value`` (None, one signature dict, or several) as a list."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    return list(value)


def deep_copy(value: Any) -> Any:
    """A copy of nested dicts, lists and tuples (signatures travel as plain dicts)."""
    if isinstance(value, Mapping):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(deep_copy(v) for v in value)
    return value
