"""Signatures: task calls to make later (Celery's ``celery.canvas`` names and dict shape).

A :class:`Signature` is a task call not made yet: the task's name, partial arguments and send
options. It *is* a dict with Celery's field names (``task``, ``args``, ``kwargs``, ``options``,
``subtask_type``, ``immutable``, ``chord_size``), so it travels in a message body or a result as
a plain map and :func:`signature` rebuilds it (a chain or group too, by ``subtask_type``).
A chain or a group is a signature too (:mod:`celeriac._chain_group`); how a chain runs is told
there.

An App is needed to send: a signature made by ``task.s()`` knows its task's; one rebuilt from a
dict takes ``app=`` (the worker passes its own); nothing is guessed from a global.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ._canvas_shapes import KINDS as _KINDS
from ._canvas_shapes import NO_STAMPING
from ._canvas_shapes import as_list as _as_list
from ._canvas_shapes import deep_copy as _deep_copy
from ._messages import new_task_id
from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from ._app import App
    from ._chain_group import chain
    from ._task import Task
    from .result import AsyncResult

__all__ = ["Signature", "maybe_signature", "signature"]

#: Options that steer the canvas itself, never sent as apply_async options of a step.
_CANVAS_KEYS = frozenset({"chord_size"})


class Signature(dict[str, Any]):
    """A task call to make later: ``add.s(2, 2)``, ``signature("tasks.add", (2, 2))``."""

    def __init__(
        self,
        task: str | Task[Any, Any] | Mapping[str, Any] | None = None,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        subtask_type: str | None = None,
        immutable: bool = False,
        app: App | None = None,
        **more_options: Any,
    ) -> None:
        if isinstance(task, Mapping):
            fields = dict(task)
            super().__init__(fields)
            self._app = app
            return
        if task is not None and not isinstance(task, str):
            app = app or task.app
            task = task.name
        super().__init__(
            task=task,
            args=tuple(args or ()),
            kwargs=dict(kwargs or {}),
            options={**(options or {}), **more_options},
            subtask_type=subtask_type,
            immutable=immutable,
            chord_size=None,
        )
        self._app = app

    # -- fields ----------------------------------------------------------------------------------

    @property
    def task(self) -> str:
        """The task's name."""
        return str(self["task"])

    name = task

    @property
    def args(self) -> tuple[Any, ...]:
        """The partial positional arguments."""
        return tuple(self.get("args") or ())

    @property
    def kwargs(self) -> dict[str, Any]:
        """The partial keyword arguments."""
        return cast(dict[str, Any], self.setdefault("kwargs", {}))

    @property
    def options(self) -> dict[str, Any]:
        """The send options (Celery's ``apply_async`` names)."""
        return cast(dict[str, Any], self.setdefault("options", {}))

    @property
    def immutable(self) -> bool:
        """True for ``.si()``: a parent's result is not prepended to the arguments."""
        return bool(self.get("immutable"))

    @property
    def subtask_type(self) -> str | None:
        """None for a task, else ``chain``, ``group``..."""
        return cast(str | None, self.get("subtask_type"))

    @property
    def id(self) -> str | None:
        """The task id, once frozen."""
        return cast(str | None, self.options.get("task_id"))

    @property
    def app(self) -> App:
        """The App that sends this signature (from its task, or ``app=``)."""
        if self._app is None:
            raise ImproperlyConfigured(
                f"signature {self!r} has no App: make it with task.s(), or pass app=..."
            )
        return self._app

    @property
    def type(self) -> Task[Any, Any]:
        """The registered task this signature calls."""
        return self.app.get_task(self.task)

    def bind(self, app: App) -> Signature:
        """Bind to ``app`` (for a signature rebuilt from a dict); returns self."""
        self._app = app
        return self

    # -- building --------------------------------------------------------------------------------

    def clone(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **opts: Any,
    ) -> Signature:
        """A copy, with ``args`` prepended (unless immutable), kwargs and options merged."""
        new = signature(_deep_copy(self), app=self._app)
        if args and not self.immutable:
            new["args"] = (*args, *self.args)
        if kwargs and not self.immutable:
            new["kwargs"] = {**self.kwargs, **kwargs}
        new.options.update(opts)
        return new

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Set send options (``queue``, ``countdown``...) in place; returns self."""
        if immutable is not None:
            self["immutable"] = immutable
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        """Make the signature ignore (or take) its parent's result."""
        self["immutable"] = immutable

    def link(self, callback: Signature) -> Signature:
        """Call ``callback`` with this task's result when it succeeds; returns the callback."""
        self.options.setdefault("link", []).append(callback)
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """Call ``errback`` with this task's id when it fails; returns the errback."""
        self.options.setdefault("link_error", []).append(errback)
        return errback

    def on_error(self, errback: Signature) -> Signature:
        """Like :meth:`link_error`, but returns self (for chaining calls)."""
        self.link_error(errback)
        return self

    def freeze(self, _id: str | None = None, **_: Any) -> AsyncResult[Any]:
        """Fix the task id now (``_id`` or a new one); returns its :class:`AsyncResult`."""
        task_id = self.options.get("task_id") or _id or new_task_id()
        self.options["task_id"] = task_id
        return self.app.AsyncResult(task_id)

    # -- sending ---------------------------------------------------------------------------------

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Send the call, ``args`` prepended (a parent's result); returns its AsyncResult."""
        sig = self.clone(args, kwargs, **options)
        send = {k: v for k, v in sig.options.items() if k not in _CANVAS_KEYS}
        for key in ("link", "link_error"):
            if key in send:
                send[key] = [dict(s) for s in _as_list(send[key])]
        return self.app.send_task(sig.task, sig.args, sig.kwargs, **send)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """Send with these arguments added (Celery's ``sig.delay``)."""
        return self.apply_async(args, kwargs)

    def apply(
        self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None, **_: Any
    ) -> Any:
        """Run the task here and now, nothing sent (``Task.apply``): an EagerResult."""
        sig = self.clone(args, kwargs)
        return sig.type.apply(sig.args, sig.kwargs, task_id=sig.options.get("task_id"))

    def stamp(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> None:
        """Refused (Celery 5.3's canvas stamping): see :data:`NO_STAMPING`."""
        raise NotImplementedError(NO_STAMPING)

    def stamp_links(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> None:
        """Refused (Celery 5.3's canvas stamping): see :data:`NO_STAMPING`."""
        raise NotImplementedError(NO_STAMPING)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: App | None = None) -> Signature:
        """Celery's name for ``signature(d, app=app)``: rebuilt from its dict form."""
        return signature(d, app=app)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here, in this process (a plain call, not a send)."""
        sig = self.clone(args, kwargs)
        return self.type(*sig.args, **sig.kwargs)

    def __or__(self, other: Any) -> chain:  # type: ignore[override]  # Celery: | chains, not dict merge
        """``a | b``: a chain."""
        if not isinstance(other, Signature):
            return NotImplemented
        return cast("chain", _KINDS["chain"](self, other))

    def __repr__(self) -> str:
        args = ", ".join(
            [*(repr(a) for a in self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())]
        )
        return f"{self.task}({args}){'!' if self.immutable else ''}"

    def __deepcopy__(self, memo: dict[int, Any]) -> Signature:
        return signature(_deep_copy(self), app=self._app)


def signature(varies: Any, *args: Any, app: App | None = None, **kwargs: Any) -> Signature:
    """A signature from a name or task and arguments, or rebuilt from its dict (Celery's)."""
    if isinstance(varies, Mapping):
        kind = varies.get("subtask_type")
        if isinstance(varies, Signature) and app is None:
            app = varies._app
        cls: type[Signature] = Signature
        if isinstance(kind, str) or kind is None:
            cls = _KINDS.get(kind, Signature)
        sig = Signature.__new__(cls)
        Signature.__init__(sig, varies, app=app)
        return sig
    sig = Signature(varies, *args, **kwargs)
    sig._app = app or sig._app
    return sig


def maybe_signature(d: Any, app: App | None = None) -> Signature:
    """``d`` as a Signature (a dict is rebuilt; a Signature is kept, bound to ``app`` if free;
    a task object is its signature without arguments)."""
    if isinstance(d, Signature):
        if d._app is None and app is not None:
            d._app = app
        return d
    if isinstance(d, Mapping):
        return signature(d, app=app)
    if isinstance(getattr(d, "name", None), str) and callable(getattr(d, "s", None)):
        return Signature(d, app=app)  # a task given where a signature goes: chord(header)(task)
    raise TypeError(f"not a signature: {d!r}")


_KINDS[None] = Signature
