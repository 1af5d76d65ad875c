"""Chords, chunks and map/starmap signatures (the rest of :mod:`celeriac.canvas`).

``chord(header)(body)``: the header tasks run in parallel; when the last one ends, the body
runs once with their results in header order. The counting is done by the hub, durably; see
:mod:`celeriac.transport.hub.chords` for how, and :func:`celeriac._builtins.unlock` for the
worker's part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._canvas_shapes import KINDS, unroll
from ._chain_group import chain, group
from ._messages import new_task_id
from ._signature import Signature, maybe_signature

if TYPE_CHECKING:
    from ._app import App
    from ._task import Task

__all__ = ["UNLOCK_TASK", "chord", "chunks", "xmap", "xstarmap"]

#: The built-in task the hub holds until a chord's header has ended.
UNLOCK_TASK = "celeriac.chord_unlock"


class chord(Signature):  # noqa: N801 - Celery's name
    """``chord(header)(body)``: run the body once with every header result, in order."""

    def __init__(
        self,
        header: Any = (),
        body: Signature | Mapping[str, Any] | None = None,
        app: App | None = None,
        **options: Any,
    ) -> None:
        members: list[Any]
        if isinstance(header, group):
            members = list(header.tasks)
        elif isinstance(header, Mapping):  # one signature (Celery's chord(sig, body))
            members = [header]
        else:
            members = list(header)
        sigs = unroll(maybe_signature(t, app=app) for t in members)
        body_sig = maybe_signature(body, app=app) if body is not None else None
        app = app or next((s._app for s in [*sigs, body_sig] if s and s._app), None)
        kwargs = {"header": sigs, "body": body_sig}
        super().__init__("celeriac.chord", (), kwargs, options, "chord", app=app)

    @property
    def tasks(self) -> list[Signature]:
        """The header tasks."""
        return [maybe_signature(t, app=self._app) for t in self.kwargs.get("header", ())]

    @property
    def body(self) -> Signature | None:
        """The body (None until given)."""
        body = self.kwargs.get("body")
        return maybe_signature(body, app=self._app) if body is not None else None

    def link_error(self, errback: Signature) -> Signature:
        """Call ``errback`` when the chord fails (the body ends with a ChordError); with
        ``task_allow_error_cb_on_chord_header`` also when a header task fails (called without
        arguments, as Celery does). Returns the errback."""
        if self.app.conf.task_allow_error_cb_on_chord_header:
            header = self.tasks
            for task in header:
                task.link_error(maybe_signature(errback, app=self._app).clone().set(immutable=True))
            self.kwargs["header"] = header
        return super().link_error(errback)

    def freeze(self, _id: str | None = None, **_: Any) -> Any:
        """Fix the header's and the body's ids now; the body's result (its parent: the
        header's GroupResult)."""
        body = self.body
        if body is None:
            raise ValueError("a chord needs a body: chord(header)(body)")
        header = self._header()
        group_result = header.freeze()
        result = body.freeze(_id)
        result.parent = group_result
        self.kwargs["header"], self.kwargs["body"] = header.tasks, body
        self.kwargs["group_id"] = group_result.id
        return result

    def _header(self) -> group:
        """The header as a group, with the id it was frozen with (its members' ``group``)."""
        header = group(self.tasks, app=self._app)
        if self.kwargs.get("group_id"):
            header.options["task_id"] = self.kwargs["group_id"]
        return header

    def __call__(self, body: Any = None, **options: Any) -> Any:
        """``chord(header)(body)``: send with this body; returns the body's AsyncResult."""
        if body is not None:
            self.kwargs["body"] = maybe_signature(body, app=self._app)
        return self.apply_async((), **options)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Publish the unlock (held by the hub), then the header; the body's AsyncResult."""
        body = self.body
        if body is None:
            raise ValueError("a chord needs a body: chord(header)(body)")
        body = body.clone()
        for eb in _links(self.options.get("link_error")):
            body.link_error(eb)
        outer = options.pop("chord_id", None) or self.options.get("chord_id")
        if outer is not None:  # this chord is a header task of another: its body counts there
            body.options["chord_id"] = outer
        root_id = options.get("root_id") or self.options.get("root_id")
        if root_id is not None:  # the header and the body keep the canvas's root
            options["root_id"] = root_id
            body.options["root_id"] = root_id
        rest = list(options.pop("chain", None) or ())
        if rest:  # steps of an enclosing chain (last first): they run after the body
            body = chain(body, *(maybe_signature(s, app=self._app) for s in reversed(rest)))
        body_result = body.freeze()
        header = self._header()
        if not len(header):
            body.apply_async(([],))
            return body_result
        group_result = header.freeze()
        chord_id = new_task_id()
        ids = [r.id for r in group_result.results]
        # Sent by name, not through Signature.apply_async, which keeps a signature's own
        # ``chord_size`` field out of the message: here it must reach the hub, which holds the
        # unlock until that many header tasks have ended.
        self.app.send_task(
            UNLOCK_TASK,
            (ids, dict(body)),
            task_id=chord_id,
            chord_size=len(ids),
            ignore_result=True,
        )
        for member in header.tasks:
            member.apply_async(
                args, kwargs, **{**options, "chord_id": chord_id, "ignore_result": False}
            )
        body_result.parent = group_result
        return body_result

    def __repr__(self) -> str:
        return f"chord({[repr(t) for t in self.tasks]}, {self.body!r})"


def _links(value: Any) -> list[Any]:
    if not value:
        return []
    return [value] if isinstance(value, Mapping) else list(value)


def chunks(task: Signature | Task[Any, Any], it: Iterable[Any], n: int) -> group:
    """Split ``it`` (argument tuples) into ``n``-sized parts: one ``starmap`` task per part."""
    name = task.name if not isinstance(task, Signature) else task.task
    app = task.app if not isinstance(task, Signature) else task._app
    items = list(it)
    parts = [items[i : i + n] for i in range(0, len(items), n)]
    return group([xstarmap(name, part, app=app) for part in parts], app=app)


def xmap(task: str, it: Iterable[Any], app: App | None = None) -> Signature:
    """One task that calls ``task`` on each item here: ``[task(x) for x in it]``."""
    return Signature("celeriac.map", (), {"task": task, "it": list(it)}, app=app)


def xstarmap(task: str, it: Iterable[Any], app: App | None = None) -> Signature:
    """One task that calls ``task(*args)`` for each tuple of ``it``."""
    return Signature("celeriac.starmap", (), {"task": task, "it": [list(a) for a in it]}, app=app)


KINDS["chord"] = chord
