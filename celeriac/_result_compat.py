"""The rest of Celery's ``AsyncResult`` surface, as a mixin of :class:`~celeriac.AsyncResult`.

``wait`` (``get``), ``info`` (``result``), ``maybe_throw``/``maybe_reraise``, ``throw``,
``as_tuple``, ``exists``, ``TimeoutError``. The extended fields (``name``, ``args``,
``kwargs``, ``worker``, ``queue``, ``retries``, ``date_done``) need ``result_extended``, which
is not implemented yet: they raise :class:`NotImplementedError` saying so, as do the other
names in :data:`REFUSED_RESULT_ATTRIBUTES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from . import states
from .exceptions import TimeoutError as CeleriacTimeoutError

__all__ = ["REFUSED_RESULT_ATTRIBUTES", "ResultCompat"]

_EXTENDED = (
    "the hub does not store extended results yet (result_extended is not implemented): keep "
    "what you need in the task's return value"
)
REFUSED_RESULT_ATTRIBUTES: dict[str, str] = {
    **dict.fromkeys(
        ("name", "args", "kwargs", "worker", "queue", "retries", "date_done"), _EXTENDED
    ),
    "backend": "results live in the hub; use get(), state, result",
    "supports_native_join": "results are pushed by the hub; there is no backend join",
}
"""AsyncResult attributes celeriac refuses for now, with the reason."""


class ResultCompat:
    """Celery's convenience members of ``AsyncResult`` (mixed into :class:`AsyncResult`)."""

    id: str
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
        """Celery's alias of ``result``: the value, or the exception of a failed task."""
        return self.result

    def maybe_throw(self, propagate: bool = True, **kw: Any) -> None:
        """Raise the task's exception if it failed (and ``propagate``); else do nothing."""
        if propagate and self.state in states.PROPAGATE_STATES:
            raise self.result

    maybe_reraise = maybe_throw

    def throw(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: a result handle cannot inject an exception into a waiting ``get``."""
        raise NotImplementedError("celeriac has no AsyncResult.throw: cancel a wait with timeout=")

    def as_tuple(self) -> tuple[tuple[str, None], None]:
        """Celery's serializable form ``((id, parent), children)`` (parents and children are
        not kept in this form: use ``parent`` and ``children``)."""
        return ((self.id, None), None)

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
