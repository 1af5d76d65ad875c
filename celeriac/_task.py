"""Tasks: ``Task[P, R]`` (typed calls), function and class tasks.

A task object lives on both sides. In the client it publishes (``delay``, ``apply_async``); in a
worker the same object, or for a class-based task one instance per execution slot, runs
(``run``). The request of the call being executed is a :class:`~celeriac._request.Request`
(:mod:`celeriac._request`); the options of a call are :mod:`celeriac._call_options`.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    NoReturn,
    ParamSpec,
    TypeVar,
    Unpack,
)

import structlog

from . import states
from ._call_options import SendOptions, check_time_limits, to_epoch
from ._chain_group import chain, group
from ._chord import chunks, xmap, xstarmap
from ._eager import EagerResult
from ._messages import new_task_id
from ._request import Request, _current, current_request
from ._retry import plan_retry
from ._signature import Signature, maybe_signature
from ._task_compat import TaskCompat, prepare_send
from .exceptions import ImproperlyConfigured, Retry

if TYPE_CHECKING:
    from ._app import App
    from .result import AsyncResult

__all__ = ["FunctionTask", "Task"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Task(TaskCompat, Generic[P, R_co]):
    """A task type. Subclass ``app.Task`` for a class-based task, or decorate with ``app.task``.

    Class attributes are the task's options (Celery's names): ``name``, ``ignore_result``,
    ``queue``, ``serializer``, ``compression``, ``max_retries``, ``acks_late``, ``time_limit`` and
    ``soft_time_limit`` (seconds; see :func:`resolve_time_limits`), ``rate_limit`` (Celery's
    ``"10/s"``, per worker node) and ``max_concurrency`` (celeriac: at most that many run at
    once on one worker node); see :mod:`celeriac._limits`. ``on_start`` runs once per
    execution slot in a worker, before its first message, so state set there lives across
    messages.
    """

    app: ClassVar[App]
    name: ClassVar[str] = ""
    abstract: ClassVar[bool] = True
    bind: ClassVar[bool] = True  # a class task's run() always receives self
    ignore_result: ClassVar[bool | None] = None
    queue: ClassVar[str | None] = None
    exchange: ClassVar[str | None] = None
    routing_key: ClassVar[str | None] = None
    serializer: ClassVar[str | None] = None
    compression: ClassVar[str | None] = None  # Celery's exec option: gzip, zlib, bzip2, lzma
    max_retries: ClassVar[int | None] = 3
    priority: ClassVar[int | None] = None
    typing: ClassVar[bool] = True
    time_limit: ClassVar[float | None] = None
    soft_time_limit: ClassVar[float | None] = None
    rate_limit: ClassVar[str | float | None] = None
    max_concurrency: ClassVar[int | None] = None
    # Retries (issue 8; Celery's names and defaults; see celeriac._retry).
    default_retry_delay: ClassVar[float] = 180
    autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    dont_autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    retry_kwargs: ClassVar[Mapping[str, Any] | None] = None
    retry_backoff: ClassVar[bool | float] = False
    retry_backoff_max: ClassVar[float] = 600
    retry_jitter: ClassVar[bool] = True
    #: One run at a time per lock name (celeriac.actors.tasklock; None: no lock). Declared
    #: here so that a worker reads it as a plain attribute for every task (issue 18).
    lock: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False
        check_time_limits(cls.soft_time_limit, cls.time_limit)
        app = getattr(cls, "app", None)
        if not cls.abstract and app is not None and "run" in cls.__dict__:
            if not cls.name:
                cls.name = app.gen_task_name(cls.__qualname__, cls.__module__)
            app.register_task(cls())

    # -- running ---------------------------------------------------------------------------------

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """The task's body: override it (or decorate a function with ``app.task``)."""
        raise NotImplementedError(f"task {self.name!r} has no run()")

    def on_start(self) -> None:
        """Called once in each worker execution slot before its first message."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Run the task here, in this process, like a plain function call."""
        token = _current.set(
            Request(
                id="", task=self.name, args=tuple(args), kwargs=dict(kwargs), called_directly=True
            )
        )
        try:
            return self.run(*args, **kwargs)
        finally:
            _current.reset(token)

    @property
    def request(self) -> Request:
        """The request being served (an empty one when not inside a task)."""
        req = _current.get()
        return req if req is not None else Request(id="", task=self.name, called_directly=True)

    @property
    def log(self) -> Any:
        """A structlog logger bound to this task's name and the current task id."""
        req = _current.get()
        return structlog.get_logger("celeriac.task").bind(
            task=self.name, task_id=req.id if req else None
        )

    # -- publishing ------------------------------------------------------------------------------

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R_co]:
        """Send the task to a worker with these arguments; returns its :class:`AsyncResult`."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Unpack[SendOptions],
    ) -> AsyncResult[R_co]:
        """Send the task with options (Celery's names; see :class:`SendOptions`)."""
        prepare_send(self, args, kwargs, options)  # typing=True: fail in the caller; expires
        # The task's defaults, where it has any: an option left out and one given as None
        # mean the same to compose (the settings' default).
        if self.ignore_result is not None and options.get("ignore_result") is None:
            options["ignore_result"] = self.ignore_result
        if self.serializer and not options.get("serializer"):
            options["serializer"] = self.serializer
        if self.compression and not options.get("compression"):
            options["compression"] = self.compression
        return self.app.send_task(self.name, args, kwargs, **options)

    def AsyncResult(self, task_id: str) -> AsyncResult[R_co]:  # noqa: N802 - Celery's name
        """A handle on an earlier call of this task, by id."""
        return self.app.AsyncResult(task_id)

    # -- canvas (issue 8): signatures of this task -----------------------------------------------

    def signature(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        """A :class:`~celeriac.canvas.Signature` of a call of this task, to send later."""
        return Signature(self, args, kwargs, options)

    def subtask(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        """Celery's older name of :meth:`signature`."""
        return self.signature(args, kwargs, **options)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """``add.s(2)``: a partial call; a parent's result is prepended to its arguments."""
        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """``add.si(2, 2)``: an immutable call; it ignores a parent's result."""
        return Signature(self, args, kwargs, immutable=True)

    def map(self, it: Iterable[Any]) -> Signature:
        """One task calling this one on each item of ``it`` (Celery's ``task.map``)."""
        return xmap(self.name, it, app=self.app)

    def starmap(self, it: Iterable[Any]) -> Signature:
        """One task calling this one with each argument tuple of ``it``."""
        return xstarmap(self.name, it, app=self.app)

    def chunks(self, it: Iterable[Any], n: int) -> group:
        """``it`` (argument tuples) split in parts of ``n``, one task per part, as a group."""
        return chunks(self, it, n)

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        **options: Any,
    ) -> EagerResult:
        """Run the task here and now (nothing is sent): an :class:`EagerResult` holding its
        value, or the exception it raised (Celery's ``apply``; there is no eager mode for
        ``delay``)."""
        parent = current_request()
        task_id = task_id or new_task_id()
        request = Request(
            id=task_id,
            task=self.name,
            args=tuple(args or ()),
            kwargs=dict(kwargs or {}),
            is_eager=True,
            parent_id=parent.id if parent is not None else None,
            root_id=(parent.root_id or parent.id) if parent is not None else task_id,
        )
        token = _current.set(request)
        try:
            value = self.run(*request.args, **request.kwargs)
        except Exception as exc:
            trace = traceback.format_exc()
            return EagerResult(request.id, exc, states.FAILURE, trace, self.name)
        finally:
            _current.reset(token)
        return EagerResult(request.id, value, states.SUCCESS, None, self.name)

    def retry(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: dt.datetime | float | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Run this call again later (same task id, ``retries + 1``): raises :class:`Retry`.

        ``countdown`` seconds (default ``default_retry_delay``) or at ``eta``; ``args`` /
        ``kwargs`` replace the call's. Out of retries (``max_retries``, default the task's),
        raises ``exc`` or :class:`MaxRetriesExceededError`. See :mod:`celeriac._retry`.
        """
        request = self.request
        if request.called_directly:
            if exc is not None:
                raise exc
            raise RuntimeError(f"{self.name}.retry() outside a worker: nothing to retry")
        retry = plan_retry(
            self,
            request,
            self.app.clock.time(),
            exc=exc,
            countdown=countdown,
            eta=to_epoch(eta),
            max_retries=max_retries,
            args=args,
            kwargs=kwargs,
        )
        if throw:
            raise retry
        return retry

    def replace(self, sig: Any) -> NoReturn:
        """Replace this call by ``sig`` (a task signature, a chain, a group or a chord),
        keeping this task's id: its result is the replacement's, and its callbacks, errbacks
        and the rest of its chain follow the replacement. Raises (never returns); see
        :class:`celeriac._canvas_flow.Replaced` and :mod:`celeriac._replace`."""

        if self.request.called_directly:
            raise RuntimeError(f"{self.name}.replace() outside a worker: nothing to replace")
        new = maybe_signature(sig, app=self.app)
        if isinstance(new, chain) and not new.tasks:
            raise ImproperlyConfigured("Cannot replace with an empty chain")
        self.on_replace(new)

    def on_replace(self, sig: Any) -> NoReturn:
        """Celery's hook, called by :meth:`replace` with the replacement signature: override it
        to look at or change ``sig``, and end with ``super().on_replace(sig)``, which hands the
        replacement to the worker (it raises, as :meth:`replace` does)."""
        from ._canvas_flow import Replaced  # noqa: PLC0415 - the canvas imports this module

        raise Replaced(sig)

    def __repr__(self) -> str:
        return f"<task {self.name}>"


class FunctionTask(Task[P, R_co]):
    """A task made from a function by ``@app.task``; ``bind=True`` passes the task as ``self``."""

    abstract = True

    def __init__(
        self,
        app: App,
        fn: Callable[..., R_co],
        *,
        name: str,
        bind: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        # Instance attributes shadow the class-level options for this one task.
        self.__dict__.update(options or {})
        self.__dict__.update(app=app, name=name, bind=bind, fn=fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Call the wrapped function."""
        fn: Callable[..., R_co] = self.__dict__["fn"]
        if self.__dict__["bind"]:
            return fn(self, *args, **kwargs)
        return fn(*args, **kwargs)
