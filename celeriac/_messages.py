"""Task and result bodies, task ids and the origin stamp.

A task message (:class:`~celeriac._protocol.TaskMessage`, composed by :mod:`celeriac._compose`)
has a body in the task's content type: ``[args, kwargs, embed]``, where ``embed`` carries canvas
links. A result's body is the return value, or for failures the map of a
:class:`~celeriac._protocol.FailureInfo`.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any, Final

from ._protocol import FailureInfo
from ._wire import failure_map

__all__ = [
    "ORIGIN",
    "exception_info",
    "failure_info",
    "new_task_id",
]

ORIGIN: Final = f"{socket.gethostname()}:{os.getpid()}"


def new_task_id() -> str:
    """A fresh task id (a UUID4, as Celery uses)."""
    return str(uuid.uuid4())


def failure_info(exc: BaseException, traceback: str | None) -> FailureInfo:
    """What a client needs to rebuild ``exc``: its type's names, its arguments, the trace."""
    return FailureInfo(type(exc).__qualname__, type(exc).__module__, exc.args, traceback)


def exception_info(exc: BaseException, traceback: str | None) -> dict[str, Any]:
    """The body of a FAILURE result (the map of :func:`failure_info`), to serialize."""
    return failure_map(failure_info(exc, traceback))
