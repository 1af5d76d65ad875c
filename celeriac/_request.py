"""The per-call :class:`Request` of a running task, and where the current one is held.

The request of the call being executed is held in a context variable, so one task object serves
many threads (and, later, asyncio tasks) at once.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Request", "current_request"]


@dataclass
class Request:
    """What a running task knows about the call it serves (``self.request`` in bound tasks)."""

    id: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    hostname: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    eta: float | None = None
    expires: float | None = None
    origin: str | None = None
    delivery_info: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    timelimit: tuple[float | None, float | None] = (None, None)
    called_directly: bool = False
    is_eager: bool = False
    # Celery's other Request fields (issue 10): the canvas of the call (``link``,
    # ``link_error``, the chain's remaining steps, the chord), how it was sent, and names
    # Celery keeps for its own machinery, at the values that are true here.
    callbacks: list[Any] | None = field(default=None, init=False)
    errbacks: list[Any] | None = field(default=None, init=False)
    chain: list[Any] | None = field(default=None, init=False)
    chord: Any = field(default=None, init=False)
    ignore_result: bool | None = None
    #: The node waiting for the result (the sender, when it asked for one).
    reply_to: str | None = None
    # Not set by the constructor (nothing to pay per task): the values that hold here.
    properties: dict[str, Any] | None = field(default=None, init=False)
    group_index: int | None = field(default=None, init=False)
    shadow: str | None = field(default=None, init=False)
    logfile: str | None = field(default=None, init=False)
    loglevel: str | None = field(default=None, init=False)
    #: How many times this call was replaced (``Task.replace``) before it ran (Celery's).
    replaced_task_nesting: int = field(default=0, init=False)
    #: The ids of the tasks sent while this request runs (``AsyncResult.children``).
    children: list[str] = field(default_factory=list, init=False)
    stamps: dict[str, Any] | None = field(default=None, init=False)
    stamped_headers: list[str] | None = field(default=None, init=False)
    utc: bool = field(default=True, init=False)

    @property
    def soft_time_limit(self) -> float | None:
        """The soft time limit of this call, seconds (None: none)."""
        return self.timelimit[0]

    @property
    def time_limit(self) -> float | None:
        """The hard time limit of this call, seconds (None: none)."""
        return self.timelimit[1]

    @property
    def correlation_id(self) -> str:
        """The message's correlation id: the task id (Celery's)."""
        return self.id

    @property
    def taskset(self) -> str | None:
        """Celery's old name of ``group``."""
        return self.group


_current: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "celeriac_request", default=None
)


def current_request() -> Request | None:
    """The request of the task running in this thread or asyncio task, if any."""
    return _current.get()
