"""The options of one call: :class:`SendOptions`, time limits and absolute times.

``apply_async`` and ``send_task`` take the same :class:`SendOptions`; a call's time limits are
resolved in one place (:func:`time_limits`) on the client, on a worker and in the prefork parent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from ._task import Task

__all__ = [
    "SendOptions",
    "check_time_limits",
    "resolve_time_limits",
    "time_limits",
    "to_epoch",
]


def resolve_time_limits(
    task: Task[Any, Any] | None,
    soft: float | None,
    hard: float | None,
    default_soft: float | None = None,
    default_hard: float | None = None,
) -> tuple[float | None, float | None]:
    """The effective ``(soft, hard)`` time limits of a call, in seconds (None: no limit).

    Celery's precedence, each limit on its own: the call's value (``apply_async(time_limit=,
    soft_time_limit=)``, the message header ``timelimit``), else the task's option, else the
    setting (``task_soft_time_limit``, ``task_time_limit``). None or 0 means "not set here".
    """
    return (
        soft or getattr(task, "soft_time_limit", None) or default_soft or None,
        hard or getattr(task, "time_limit", None) or default_hard or None,
    )


class _LimitSettings(Protocol):
    """The two settings that give a call its default time limits."""

    @property
    def task_soft_time_limit(self) -> float | None: ...

    @property
    def task_time_limit(self) -> float | None: ...


def time_limits(
    task: Task[Any, Any] | None,
    timelimit: Sequence[float | None] | None,
    conf: _LimitSettings,
) -> tuple[float | None, float | None]:
    """The effective ``(soft, hard)`` limits of one call: the one place they are resolved.

    ``timelimit`` is the call's ``[soft, hard]`` (``apply_async(soft_time_limit=,
    time_limit=)`` on the client; the message header ``timelimit`` on a worker and in the
    prefork parent); each limit not set there comes from the task's option, else from the
    ``task_soft_time_limit``/``task_time_limit`` settings of ``conf``.
    """
    soft, hard = timelimit if timelimit else (None, None)
    return resolve_time_limits(task, soft, hard, conf.task_soft_time_limit, conf.task_time_limit)


class SendOptions(TypedDict, total=False):
    """The options of ``apply_async`` and ``send_task``: one type, Celery's names and meanings.

    ``countdown`` is seconds from now; ``eta`` an absolute time (a datetime, naive meaning UTC,
    or epoch seconds); ``expires`` seconds from now (a number) or an absolute datetime. The hub
    holds delayed messages; workers only ever see due ones. ``queue``, ``exchange``,
    ``routing_key`` and ``priority`` win over ``task_routes``, which win over the task's own
    options (Celery's precedence). ``time_limit`` (hard) and ``soft_time_limit`` are seconds;
    they win over the task's options, which win over the ``task_time_limit`` /
    ``task_soft_time_limit`` settings. ``ignore_result`` and ``serializer`` default to the
    task's options, then to ``task_ignore_result`` / ``task_serializer``. ``compression``
    (gzip, zlib, bzip2, lzma) defaults to the task's option, then to ``task_compression``.
    """

    task_id: str | None
    countdown: float | None
    eta: dt.datetime | float | None
    expires: dt.datetime | float | None
    queue: str | None
    exchange: str | None
    routing_key: str | None
    serializer: str | None
    compression: str | None
    ignore_result: bool | None
    headers: Mapping[str, Any] | None
    priority: int | None
    time_limit: float | None
    soft_time_limit: float | None
    # The canvas (issue 8): callbacks and errbacks (signatures), the rest of a chain (signature
    # dicts, last step first), the group and lineage of the call. See celeriac.canvas.
    link: Any
    link_error: Any
    chain: Sequence[Mapping[str, Any]] | None
    group_id: str | None
    root_id: str | None
    parent_id: str | None
    chord_id: str | None  # celeriac: the chord (unlock id) a header task counts toward
    chord_size: int | None  # celeriac: on a chord's unlock message, how many it waits for


def check_time_limits(soft: float | None, hard: float | None) -> None:
    """Refuse a soft limit above the hard one, as Celery does: it could never fire."""
    if soft and hard and soft > hard:
        raise ImproperlyConfigured(
            f"soft_time_limit must be less than or equal to time_limit, got "
            f"soft_time_limit={soft:g} and time_limit={hard:g}"
        )


def to_epoch(value: dt.datetime | float | None) -> float | None:
    """Epoch seconds of an absolute time (a naive datetime is read as UTC)."""
    if value is None or isinstance(value, int | float):
        return value
    if value.tzinfo is None:
        # Naive datetimes are read as UTC, as Celery does with enable_utc.
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()
