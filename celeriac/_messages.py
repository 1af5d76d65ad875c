"""Task and result messages: the header fields (Celery protocol v2 names) and how bodies look.

A task message is a msgpack header (routing and control, read by the hub) and a body in the
task's content type: ``[args, kwargs, embed]``, where ``embed`` carries canvas links. A result
message (``DONE``) is a header (``id``, ``state``, ``ct``...) and a body: the return value, or
for failures a map ``{exc_type, exc_module, exc_message, traceback}``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "ORIGIN",
    "build_task_header",
    "exception_info",
    "new_task_id",
]

ORIGIN: Final = f"{socket.gethostname()}:{os.getpid()}"


def new_task_id() -> str:
    """A fresh task id (a UUID4, as Celery uses)."""
    return str(uuid.uuid4())


def build_task_header(
    task_name: str,
    task_id: str,
    *,
    queue: str,
    content_type: str,
    reply: bool,
    ignore_result: bool,
    eta: float | None = None,
    expires: float | None = None,
    priority: int | None = None,
    retries: int = 0,
    root_id: str | None = None,
    parent_id: str | None = None,
    group: str | None = None,
    headers: Mapping[str, Any] | None = None,
    timelimit: Sequence[float | None] | None = None,
    exchange: str | None = None,
    routing_key: str | None = None,
) -> dict[str, Any]:
    """The header map of one task message; absent options are left out to keep it small."""
    header: dict[str, Any] = {
        "id": task_id,
        "task": task_name,
        "queue": queue,
        "ct": content_type,
        "root_id": root_id or task_id,
        "origin": ORIGIN,
    }
    if reply:
        header["reply"] = True
    if ignore_result:
        header["ignore_result"] = True
    optional = {
        "eta": eta,
        "expires": expires,
        "priority": priority,
        "parent_id": parent_id,
        "group": group,
        "timelimit": list(timelimit) if timelimit else None,
        "headers": dict(headers) if headers else None,
        "exchange": exchange,
        "routing_key": routing_key,
    }
    header.update({k: v for k, v in optional.items() if v is not None})
    if retries:
        header["retries"] = retries
    return header


def exception_info(exc: BaseException, traceback: str | None) -> dict[str, Any]:
    """The body of a FAILURE result: enough to rebuild the exception on the client."""
    args = list(exc.args)
    return {
        "exc_type": type(exc).__qualname__,
        "exc_module": type(exc).__module__,
        "exc_message": args,
        "traceback": traceback,
    }
