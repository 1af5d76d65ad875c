"""Retries: ``self.retry(...)``, ``autoretry_for`` and backoff, as pure decisions.

How it works
------------
``self.retry(countdown=..., exc=...)`` (or an exception listed in ``autoretry_for``) raises
:class:`~celeriac.exceptions.Retry` carrying the plan: when to run again (epoch seconds) and
the arguments. The worker turns it into a ``DONE`` item with state RETRY whose body is the new
task body; the hub, in one step (one commit), replaces the delivered message with the same
task id, ``retries + 1`` and that eta, and holds it until then (:mod:`celeriac.transport.hub.
retries`). So a retry is never a second message: a crash before the ``DONE`` runs the original
delivery again, a crash after it finds the retry stored, and duplicates cannot arise.

``max_retries`` (default 3, None: no limit) counts retries already made
(``request.retries``); beyond it ``retry`` raises ``exc`` if given, else
:class:`~celeriac.exceptions.MaxRetriesExceededError`. The delay is ``countdown``, else
``eta``, else ``default_retry_delay`` (180 s); for autoretries with ``retry_backoff``, it is
Celery's exponential backoff: ``factor * 2**retries`` capped by ``retry_backoff_max`` (600 s)
and, with ``retry_jitter`` (default True), a random value in ``[0, that]``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .exceptions import MaxRetriesExceededError, Retry

if TYPE_CHECKING:
    from ._request import Request
    from ._task import Task

__all__ = ["autoretry", "backoff", "plan_retry"]


def backoff(
    factor: float,
    retries: int,
    maximum: float = 600.0,
    jitter: bool = True,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """Celery's exponential backoff: ``factor * 2**retries``, capped, maybe jittered."""
    countdown = min(maximum, factor * (2**retries))
    return rand(0, countdown) if jitter else countdown


def plan_retry(
    task: Task[Any, Any],
    request: Request,
    now: float,
    *,
    exc: BaseException | None = None,
    countdown: float | None = None,
    eta: float | None = None,
    max_retries: int | None = None,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> Retry:
    """The :class:`Retry` to raise for this call (``eta`` in epoch seconds), or raise when
    no retry is left."""
    limit = task.max_retries if max_retries is None else max_retries
    if limit is not None and request.retries >= limit:
        if exc is not None:
            raise exc
        raise MaxRetriesExceededError(
            f"Can't retry {task.name}[{request.id}] args:{request.args} kwargs:{request.kwargs}"
        )
    when = eta if countdown is None else None
    if when is None:
        delay = countdown if countdown is not None else task.default_retry_delay
        when = now + float(delay or 0)
    retry = Retry(f"Retry in {max(0.0, when - now):g}s", exc, when)
    retry.retry_args = tuple(request.args if args is None else args)
    retry.retry_kwargs = dict(request.kwargs if kwargs is None else kwargs)
    return retry


def autoretry(
    task: Task[Any, Any],
    request: Request,
    exc: BaseException,
    now: float,
    rand: Callable[[float, float], float] = random.uniform,
) -> BaseException:
    """What a task's exception becomes: a :class:`Retry` if ``autoretry_for`` lists it (and
    ``dont_autoretry_for`` does not), the exception itself otherwise or when out of retries."""
    wanted = tuple(task.autoretry_for or ())
    if not wanted or not isinstance(exc, wanted) or isinstance(exc, Retry):
        return exc
    if isinstance(exc, tuple(task.dont_autoretry_for or ())):
        return exc
    options = dict(task.retry_kwargs or {})
    if task.retry_backoff:
        factor = 1 if task.retry_backoff is True else float(task.retry_backoff)
        options["countdown"] = backoff(
            factor, request.retries, task.retry_backoff_max, task.retry_jitter, rand
        )
    try:
        return plan_retry(task, request, now, exc=exc, **options)
    except BaseException as final:
        return final
