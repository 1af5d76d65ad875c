"""What running one delivery produced: a typed :class:`TaskOutcome`, built by the executor.

The executor (:mod:`celeriac.actors.execution`) returns a ``TaskOutcome`` and never a wire
message: whoever owns the connection to the hub turns it into the ``DONE`` message
(:func:`celeriac.runtime.outcomes.done_message`), so this layer knows no header field names.
The result (or failure map) is already encoded in the result serializer, in the slot that ran
the task, so the connection thread only forwards bytes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from celeriac import states
from celeriac._messages import failure_info
from celeriac._serialization import dumps
from celeriac._wire import failure_map
from celeriac.exceptions import SerializationError

if TYPE_CHECKING:
    from dataclasses import dataclass as _hot
else:  # frozen for mypy, plain slots at run time: see celeriac._protocol_parts
    from celeriac._protocol_parts import _hot

__all__ = ["Failure", "TaskOutcome", "failure_outcome"]


# Built once or twice per task: frozen for mypy, plain slots at run time (see _hot).
@_hot(frozen=True, slots=True)
class Failure:
    """Why a task failed: what a client needs to rebuild the exception, and the traceback."""

    exc_type: str
    exc_module: str
    exc_message: tuple[Any, ...]
    traceback: str | None


@_hot(frozen=True, slots=True)
class TaskOutcome:
    """The outcome of one delivery.

    ``state`` is SUCCESS, FAILURE or REJECTED (a task that raised ``Ignore`` reports SUCCESS
    with ``store=False``). ``body`` is the encoded return value, or for a failure the encoded
    failure map, in ``content_type``. ``store`` is False when no result is kept
    (``ignore_result``). ``tag`` is the hub's delivery tag (None: the task id is the tag).
    ``retries`` is the delivery's retry count; ``requeue`` is True for ``Reject(requeue=True)``:
    the message should go back to its queue instead of ending REJECTED (the conversion to the
    wire, :func:`celeriac.runtime.outcomes.done_message`, does not act on it yet).
    """

    task_id: str
    tag: str | None
    state: str
    content_type: str
    body: bytes
    store: bool = True
    failure: Failure | None = None
    retries: int = 0
    requeue: bool = False
    retry_eta: float | None = None  # a RETRY: the body is the next attempt's task body
    children: tuple[str, ...] = ()  # the ids of the tasks it sent (AsyncResult.children)


def failure_outcome(
    task_id: str,
    tag: str | None,
    exc: BaseException,
    trace: str | None,
    *,
    serializer: str,
    store: bool,
    compression: str | None = None,
    state: str = states.FAILURE,
    retries: int = 0,
) -> TaskOutcome:
    """The outcome of a task that ended with ``exc``: its failure map, encoded."""
    info = failure_info(exc, trace)
    try:
        ct, body = dumps(failure_map(info), serializer, compression)
    except SerializationError:
        info = dataclasses.replace(info, exc_message=tuple(repr(a) for a in exc.args))
        ct, body = dumps(failure_map(info), serializer, compression)
    failure = Failure(info.exc_type, info.exc_module, info.exc_message, info.traceback)
    return TaskOutcome(task_id, tag, state, ct, body, store, failure, retries)
