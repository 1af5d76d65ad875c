"""Task and result bodies, task ids and the origin stamp.

A task message (:class:`~celeriac._protocol.TaskMessage`, composed by :mod:`celeriac._compose`)
has a body in the task's content type: ``[args, kwargs, embed]``, where ``embed`` carries canvas
links. A result's body is the return value, or for failures the map of a
:class:`~celeriac._protocol.FailureInfo`.
"""

from __future__ import annotations

import os
import socket
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


#: Task ids made ahead from one ``os.urandom`` call: ``str(uuid.uuid4())`` (a system call and
#: a UUID object per id) showed in the producer's profile (issue 18). Emptied in a forked
#: child, which must not hand out its parent's.
_IDS_AHEAD: Final = 64
_ids: list[str] = []
os.register_at_fork(after_in_child=_ids.clear)


def new_task_id() -> str:
    """A fresh task id (a random UUID, version 4, as Celery uses)."""
    try:
        return _ids.pop()  # atomic under the GIL: no two threads get the same id
    except IndexError:
        made = _uuid4_strings(os.urandom(16 * _IDS_AHEAD))
        mine = made.pop()
        _ids.extend(made)
        return mine


def _uuid4_strings(raw: bytes) -> list[str]:
    """``str(uuid.UUID(bytes=b, version=4))`` for each 16 bytes ``b`` of ``raw``, by slicing
    hex: the version digit is 4 and the variant digit one of 8, 9, a, b (RFC 4122)."""
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
        f"{_VARIANT[int(h[i + 16], 16) & 3]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, len(h), 32)
    ]


_VARIANT: Final = "89ab"


def failure_info(exc: BaseException, traceback: str | None) -> FailureInfo:
    """What a client needs to rebuild ``exc``: its type's names, its arguments, the trace."""
    return FailureInfo(type(exc).__qualname__, type(exc).__module__, exc.args, traceback)


def exception_info(exc: BaseException, traceback: str | None) -> dict[str, Any]:
    """The body of a FAILURE result (the map of :func:`failure_info`), to serialize."""
    return failure_map(failure_info(exc, traceback))
