"""The rest of Celery's ``AsyncResult`` surface, as a mixin of :class:`~celeriac.AsyncResult`.

``wait`` (``get``), ``info`` (``result``), ``maybe_throw``/``maybe_reraise``, ``throw``,
``as_tuple``, ``exists``, ``TimeoutError``, and the request of the task: ``name``, ``args``,
``kwargs``, ``worker``, ``queue``, ``retries`` (known while the hub holds the task, and after
it ended with ``result_extended``) and ``date_done`` (with ``result_extended``), read from the
hub with one ``COMPAT.INFO`` round trip (see :mod:`celeriac._protocol_compat`). The names in
:data:`REFUSED_RESULT_ATTRIBUTES` raise :class:`NotImplementedError` saying why.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, NoReturn

from . import states
from ._protocol_compat import TaskInfo
from ._serialization import loads, normalize_accept
from .exceptions import TimeoutError as CeleriacTimeoutError

if TYPE_CHECKING:
    from ._app import App

__all__ = ["REFUSED_RESULT_ATTRIBUTES", "ResultCompat"]

REFUSED_RESULT_ATTRIBUTES: dict[str, str] = {
    "backend": "results live in the hub; use get(), state, result",
    "supports_native_join": "results are pushed by the hub; there is no backend join",
    "graph": "there is no dependency-graph object: walk children, or use collect()/iterdeps()",
    "build_graph": "there is no dependency-graph object: walk children, or use "
    "collect()/iterdeps()",
    "get_leaf": "there is no dependency-graph object: walk children, or use collect()",
    "revoke_by_stamped_headers": "canvas stamping is not supported; revoke by id",
}
"""AsyncResult attributes celeriac refuses for now, with the reason."""


class ResultCompat:
    """Celery's convenience members of ``AsyncResult`` (mixed into :class:`AsyncResult`)."""

    id: str
    app: App
    _task_info: TaskInfo | None = None
    parent: Any
    #: True when the task was sent with ``ignore_result``: no result will be stored for it.
    ignored: bool = False
    #: The error ``get(timeout=...)`` raises (Celery's ``AsyncResult.TimeoutError``).
    TimeoutError = CeleriacTimeoutError

    if TYPE_CHECKING:

        def get(self, timeout: float | None = None, propagate: bool = True) -> Any: ...

        @property
        def state(self) -> str: ...

        @property
        def result(self) -> Any: ...

    def wait(self, timeout: float | None = None, propagate: bool = True, **kw: Any) -> Any:
        """Celery's older name of :meth:`get`."""
        return self.get(timeout=timeout, propagate=propagate, **kw)

    @property
    def info(self) -> Any:
        """Celery's alias of ``result``: the value, the exception of a failed task, or the meta
        of the last ``update_state`` while it runs."""
        return self.result

    def _hub_info(self) -> TaskInfo | None:
        """What the hub knows of this task (kept once it ended); None if it does not answer."""
        if self._task_info is not None:
            return self._task_info
        info: TaskInfo | None = self.app._client().info(self.id)
        if info is not None and info.state in states.READY_STATES:
            self._task_info = info
        return info

    def _progress_meta(self, info: TaskInfo) -> Any:
        """The meta of the running task's last ``update_state`` (None if there is none)."""
        if info.meta is None or info.content_type is None:
            return None
        conf = self.app.conf
        return loads(info.meta, info.content_type, _accept(conf))

    def _request(self) -> tuple[Any, Any] | None:
        info = self._hub_info()
        if info is None or info.args is None or info.args_type is None:
            return None
        body = loads(info.args, info.args_type, normalize_accept(self.app.conf.accept_content))
        return tuple(body[0]), dict(body[1])

    @property
    def name(self) -> str | None:
        """The task's name (while the hub holds it; after it ended, with result_extended)."""
        info = self._hub_info()
        return None if info is None else info.name

    @property
    def args(self) -> tuple[Any, ...] | None:
        """The task's positional arguments (like ``name``; up to 24 KiB of arguments)."""
        request = self._request()
        return None if request is None else request[0]

    @property
    def kwargs(self) -> dict[str, Any] | None:
        """The task's keyword arguments (like ``args``)."""
        request = self._request()
        return None if request is None else request[1]

    @property
    def worker(self) -> str | None:
        """The worker node running it, or that ran it (like ``name``)."""
        info = self._hub_info()
        return None if info is None else info.worker

    @property
    def queue(self) -> str | None:
        """The queue it was delivered from (like ``name``)."""
        info = self._hub_info()
        return None if info is None else info.queue

    @property
    def retries(self) -> int | None:
        """How many times it was retried (like ``name``)."""
        info = self._hub_info()
        return None if info is None else info.retries

    @property
    def date_done(self) -> dt.datetime | None:
        """When it ended (UTC), with result_extended; None before."""
        info = self._hub_info()
        if info is None or info.date_done is None:
            return None
        return dt.datetime.fromtimestamp(info.date_done, tz=dt.UTC)

    def maybe_throw(self, propagate: bool = True, **kw: Any) -> None:
        """Raise the task's exception if it failed (and ``propagate``); else do nothing."""
        if propagate and self.state in states.PROPAGATE_STATES:
            raise self.result

    maybe_reraise = maybe_throw

    def throw(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: a result handle cannot inject an exception into a waiting ``get``."""
        raise NotImplementedError("celeriac has no AsyncResult.throw: cancel a wait with timeout=")

    def as_tuple(self) -> tuple[tuple[str, Any], None]:
        """Celery's serializable form ``((id, parent's form), None)``: what a task returning
        this result stores (:func:`celeriac.result.result_from_tuple` rebuilds it)."""
        parent = self.parent
        return ((self.id, parent.as_tuple() if parent is not None else None), None)

    def as_list(self) -> list[str]:
        """This id, then the ids of the previous steps of its chain (Celery's ``as_list``)."""
        parent = self.parent
        return [self.id, *(parent.as_list() if parent is not None else ())]

    def exists(self) -> bool:
        """True if the hub knows this task (any state but PENDING)."""
        return self.state != states.PENDING

    if not TYPE_CHECKING:  # hidden from type checkers: a typo stays a type error

        def __getattr__(self, name: str) -> Any:
            if name in REFUSED_RESULT_ATTRIBUTES:
                raise NotImplementedError(
                    f"celeriac has no AsyncResult.{name}: {REFUSED_RESULT_ATTRIBUTES[name]}"
                )
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _accept(conf: Any) -> frozenset[str]:
    """The content types a result (or progress meta) may have here."""
    return normalize_accept(conf.result_accept_content or conf.accept_content)
