"""Chains and groups: the canvas shapes that hold other signatures (Celery's names).

How a chain runs
----------------
``chain(a, b, c).apply_async()`` freezes every step's task id first, then publishes ``a`` alone.
Its message body carries the rest of the chain (Celery protocol v2's ``chain`` field, last step
first) and each step's ``link``/``link_error`` callbacks. The worker that ran ``a`` publishes
``b`` with ``a``'s return value prepended to ``b``'s arguments (unless ``b`` is immutable,
``.si()``) and the rest of the chain, and waits for the hub to confirm that publish before it
acknowledges ``a`` (:mod:`celeriac._canvas_flow`): a crash in between runs ``a`` again and
publishes ``b`` again with the same frozen id, which the hub drops as a duplicate. No task ever
blocks on another's result. When a step fails, its errbacks are published with the failed
task's id as their argument (Celery's errback call) and every later step ends FAILURE with the
same exception, so ``chain(...)().get()`` raises instead of waiting forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ._canvas_shapes import KINDS as _KINDS
from ._canvas_shapes import as_list as _as_list
from ._canvas_shapes import flatten as _flatten
from ._canvas_shapes import fold as _fold
from ._canvas_shapes import single_result as _single_result
from ._canvas_shapes import unroll
from ._messages import new_task_id
from ._resultset import GroupResult
from ._signature import Signature, maybe_signature

if TYPE_CHECKING:
    from ._app import App

__all__ = ["chain", "group"]


class chain(Signature):  # noqa: N801 - Celery's name
    """Steps run one after the other, each given the previous one's result."""

    def __init__(self, *tasks: Any, app: App | None = None, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], Mapping):
            tasks = tuple(tasks[0])
        steps = [maybe_signature(t, app=app) for t in tasks]
        app = app or next((s._app for s in steps if s._app is not None), None)
        super().__init__("celeriac.chain", (), {"tasks": steps}, options, "chain", app=app)

    @property
    def tasks(self) -> list[Signature]:
        """The steps (a nested chain is flattened when sent)."""
        return [maybe_signature(t, app=self._app) for t in self.kwargs.get("tasks", ())]

    def __or__(self, other: Any) -> chain:  # type: ignore[override]  # Celery: | chains
        """``chain | sig`` or ``chain | chain``: a longer chain."""
        if isinstance(other, chain):
            return chain(*self.tasks, *other.tasks, app=self._app, **self.options)
        if isinstance(other, Signature):
            return chain(*self.tasks, other, app=self._app, **self.options)
        return NotImplemented

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Freeze every step, send the first (it carries the rest); the last step's result."""
        steps = _fold(_flatten(self.tasks))
        if not steps:
            raise ValueError("an empty chain has nothing to run")
        frozen = [s.clone() for s in steps]
        args = (*(args or ()), *self.args)  # partial arguments of the chain go to its first step
        # Steps of an enclosing chain (this chain was one of its steps) run after this one's.
        outer = list(options.pop("chain", None) or ())
        if options.get("task_id"):  # Celery's: a chain's task_id is its last step's
            frozen[-1].options["task_id"] = options.pop("task_id")
        # A chain in a chord's header counts there by its last step's result, not its first.
        chord_id = options.pop("chord_id", None) or self.options.get("chord_id")
        if chord_id is not None:
            frozen[-1] = _single_result(frozen[-1])
            frozen[-1].options.update(chord_id=chord_id, ignore_result=False)
        root_id = options.pop("root_id", None) or frozen[0].options.get("task_id") or new_task_id()
        frozen[0].options.setdefault("task_id", root_id)
        for step in frozen:
            for eb in _as_list(self.options.get("link_error")):
                step.link_error(eb)
            step.options["root_id"] = root_id
        for cb in _as_list(self.options.get("link")):
            frozen[-1].link(cb)
        whole = chain(*frozen, app=self._app)
        last = whole.freeze()
        first, *rest = whole.tasks
        chained = [*outer, *(dict(s) for s in reversed(rest))]
        first.apply_async(args, kwargs, chain=chained, **{**self._send_options(), **options})
        return last

    def freeze(self, _id: str | None = None, **_: Any) -> Any:
        """Fix every step's id now; the last step's result (``.parent`` walks back)."""
        steps = [s.clone() for s in _fold(_flatten(self.tasks))]
        if not steps:
            raise ValueError("an empty chain has nothing to run")
        if _id is not None:  # Celery's: the id given is the last step's (unless it has one)
            steps[-1].options.setdefault("task_id", _id)
        parent = None
        for step in steps:
            result = step.freeze()
            first = result  # a chord's body result has its header's GroupResult as parent
            while getattr(first, "parent", None) is not None:
                first = first.parent
            first.parent = parent
            parent = result
        self.kwargs["tasks"] = steps
        if parent is not None:
            self.options["task_id"] = parent.id  # chain.id: the last step's, as Celery's
        return parent

    def __call__(self, *args: Any, **options: Any) -> Any:
        """Send it (Celery: calling a chain applies it asynchronously)."""
        return self.apply_async(args, **options)

    def _send_options(self) -> dict[str, Any]:
        skip = ("link", "link_error", "task_id", "chord_id")
        return {k: v for k, v in self.options.items() if k not in skip}

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks) or "chain()"


class group(Signature):  # noqa: N801 - Celery's name
    """Tasks sent at once; their results collected in order (:class:`GroupResult`)."""

    def __init__(self, *tasks: Any, app: App | None = None, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], Mapping):
            tasks = tuple(tasks[0])
        if len(tasks) == 1 and isinstance(tasks[0], Mapping) and _is_group_dict(tasks[0]):
            tasks = tuple(maybe_signature(tasks[0], app=app).kwargs.get("tasks", ()))  # unrolled
        members = unroll([maybe_signature(t, app=app) for t in tasks])
        app = app or next((s._app for s in members if s._app is not None), None)
        super().__init__("celeriac.group", (), {"tasks": members}, options, "group", app=app)

    @property
    def tasks(self) -> list[Signature]:
        """The members."""
        return [maybe_signature(t, app=self._app) for t in self.kwargs.get("tasks", ())]

    def __len__(self) -> int:
        return len(self.kwargs.get("tasks", ()))

    def freeze(self, _id: str | None = None, **_: Any) -> GroupResult:  # type: ignore[override]
        """Fix the group id and every member's id; returns the :class:`GroupResult`."""
        group_id = self.options.get("task_id") or _id or new_task_id()
        self.options["task_id"] = group_id
        members = self.tasks
        results = [m.set(group_id=group_id).freeze() for m in members]
        self.kwargs["tasks"] = members
        return GroupResult(group_id, results, app=self.app)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> GroupResult:
        """Send every member (``args`` prepended to each); returns the :class:`GroupResult`."""
        if not len(self):
            return GroupResult(self.options.get("task_id") or new_task_id(), [], app=self.app)
        frozen = cast(group, self.clone())
        result = frozen.freeze()
        for member in frozen.tasks:
            member.clone(args, kwargs, **options).apply_async()
        only: Any = result.results[0] if len(result.results) == 1 else None
        if isinstance(only, GroupResult):  # Celery's: group(a | group(b, c)) gives [b, c]
            return only
        return result

    def __call__(self, *args: Any, **options: Any) -> Any:
        """Send it (Celery: calling a group applies it asynchronously)."""
        return self.apply_async(args, **options)

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"


def _is_group_dict(d: Mapping[str, Any]) -> bool:
    """True for a group's dict (Celery unrolls a group whose only member is a group)."""
    return d.get("subtask_type") == "group"


_KINDS.update({"chain": chain, "group": group})
