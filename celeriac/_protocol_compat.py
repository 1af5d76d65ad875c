"""The wire messages of Celery's task state surface (issue 10): progress and extended results.

``Task.update_state(state=..., meta=...)`` in a running task sends a :class:`TaskState` to the
hub, which keeps the last one with the message it delivered; a client anywhere then sees the
custom state through ``AsyncResult.state`` (``STAT``) and its meta through ``AsyncResult.info``
(an :class:`InfoQuery` answered by a :class:`TaskInfo`). With ``result_extended`` the worker
also marks the delivery (``extended``), and the hub keeps the task's name, arguments, queue,
worker, retries and completion time beside its result, for ``AsyncResult.name``, ``args``...

Like every control command these carry one msgpack header and no body, so a meta (serialized
with the result serializer) is at most :data:`MAX_META` bytes: progress reports are small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

__all__ = ["MAX_ARGS", "MAX_META", "InfoQuery", "TaskInfo", "TaskState"]

#: The largest serialized meta of ``update_state``, and the largest task body (arguments) a
#: ``TaskInfo`` carries: both together stay inside the 64 KiB a header may have.
MAX_META: Final = 32 * 1024
MAX_ARGS: Final = 24 * 1024


@dataclass(frozen=True, slots=True)
class TaskState:
    """worker -> hub: a running delivery's custom state and meta (``Task.update_state``);
    ``extended``: keep the request beside the result (``result_extended``)."""

    COMMAND: ClassVar[bytes] = b"COMPAT.STATE"
    id: str
    tag: str | None = None
    state: str | None = None
    meta: bytes = b""
    content_type: str = "application/json"
    extended: bool = False

    @property
    def delivery_tag(self) -> str:
        """The delivery meant."""
        return self.tag if self.tag is not None else self.id


@dataclass(frozen=True, slots=True)
class InfoQuery:
    """client -> hub: the state, meta and request of a task, answered by :class:`TaskInfo`."""

    COMMAND: ClassVar[bytes] = b"COMPAT.INFO"
    id: str
    rid: int | str | None = None


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """hub -> client: what the hub knows of a task (see the module docstring).

    ``meta``/``content_type``: the last ``update_state`` meta of a running task. ``name``,
    ``queue``, ``worker``, ``retries``: its request while the hub holds it, or (with
    ``result_extended``) once done, with ``date_done``; ``args`` is the task body as sent
    (``[args, kwargs, embed]`` in ``args_type``), left out when larger than :data:`MAX_ARGS`.
    """

    COMMAND: ClassVar[bytes] = b"COMPAT.INFO_REPLY"
    id: str
    state: str
    rid: int | str | None = None
    meta: bytes | None = None
    content_type: str | None = None
    name: str | None = None
    queue: str | None = None
    worker: str | None = None
    retries: int | None = None
    date_done: float | None = None
    args: bytes | None = None
    args_type: str | None = None
