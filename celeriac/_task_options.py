"""The options a task and a call may have, checked before anything is recorded or sent.

A task's options (``@app.task(...)``, ``shared_task``) are :data:`TASK_OPTIONS`; a call's are
:class:`~celeriac._call_options.SendOptions`. An unknown name is refused, never ignored: a typo
would otherwise silently change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._call_options import check_time_limits
from ._compose import OPTION_NAMES
from ._compression import check_compression
from ._limits import check_max_concurrency, check_rate
from ._lock import check_lock_options
from ._task_compat import check_acks_late
from .exceptions import ImproperlyConfigured

__all__ = ["TASK_OPTIONS", "check_send_options", "check_task_options"]

#: The options a task may declare (Celery's names, and celeriac's ``max_concurrency``, ``lock``).
TASK_OPTIONS = frozenset(
    {
        "ignore_result",
        "queue",
        "exchange",
        "routing_key",
        "serializer",
        "compression",
        "max_retries",
        "priority",
        "acks_late",
        "typing",
        "time_limit",
        "soft_time_limit",
        "rate_limit",
        "max_concurrency",
        # retries (issue 8)
        "default_retry_delay",
        "autoretry_for",
        "dont_autoretry_for",
        "retry_kwargs",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "base",
        "track_started",
        "expires",
        "throws",
        "acks_on_failure_or_timeout",
        "store_errors_even_if_ignored",
        # one run at a time per lock name (issue 12): celeriac.actors.tasklock
        "lock",
        "lock_expire",
        "lock_busy",
    }
)


def check_task_options(options: Mapping[str, Any]) -> None:
    """Refuse unknown task options, a soft time limit above the hard one, a bad rate limit or
    concurrency cap: before anything is recorded (``shared_task`` too)."""
    unknown = set(options) - TASK_OPTIONS
    if unknown:
        raise ImproperlyConfigured(
            f"unknown task option(s) {sorted(unknown)}; known: {sorted(TASK_OPTIONS)}"
        )
    check_time_limits(options.get("soft_time_limit"), options.get("time_limit"))
    check_compression(options.get("compression"), "task option compression")
    check_acks_late(options)
    check_lock_options(options)
    check_rate(options.get("rate_limit"))
    check_max_concurrency(options.get("max_concurrency"))


def check_send_options(options: Mapping[str, Any]) -> None:
    """Refuse an option name ``SendOptions`` does not declare (a typo would be ignored)."""
    if OPTION_NAMES.issuperset(options):
        return  # every send passes here: one C-level look, no set built (issue 18)
    unknown = sorted(options.keys() - OPTION_NAMES)
    if unknown:
        import difflib  # noqa: PLC0415 - only when a suggestion is made (start-up time)

        hints = {u: difflib.get_close_matches(u, OPTION_NAMES, 1) for u in unknown}
        said = ", ".join(
            f"{u!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for u, h in hints.items()
        )
        raise TypeError(f"unknown send option(s) {said}; known: {sorted(OPTION_NAMES)}")
