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

__all__ = [
    "ORIGIN",
    "exception_info",
    "new_task_id",
]

ORIGIN: Final = f"{socket.gethostname()}:{os.getpid()}"


def new_task_id() -> str:
    """A fresh task id (a UUID4, as Celery uses)."""
    return str(uuid.uuid4())


def exception_info(exc: BaseException, traceback: str | None) -> dict[str, Any]:
    """The body of a FAILURE result: enough to rebuild the exception on the client."""
    args = list(exc.args)
    return {
        "exc_type": type(exc).__qualname__,
        "exc_module": type(exc).__module__,
        "exc_message": args,
        "traceback": traceback,
    }
