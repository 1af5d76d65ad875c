"""A task's outcome as the message the hub expects: the one place it is converted.

The executor (:mod:`celeriac.actors.execution`) returns a typed
:class:`~celeriac.actors.outcome.TaskOutcome`; the worker's slot turns it into a protocol
message here: a ``DONE`` (acknowledgement, result, credit back) or, for ``Reject(requeue=True)``,
a ``REJ`` that puts the message back in its queue.

A result body over ``broker_max_message_size`` is not sent (the hub's socket would drop the
connection on it, and the worker would send it again and again): the task's result is a
FAILURE (``ResultTooLarge``) that says so, and the worker logs it.
"""

from __future__ import annotations

import msgpack

from celeriac import states
from celeriac._log import get_logger
from celeriac.actors.outcome import TaskOutcome
from celeriac.transport import protocol as p
from celeriac.transport.hub.limits import too_big

__all__ = ["outcome_frames", "outcome_message"]

_log = get_logger("celeriac.worker")
#: Results the worker makes itself have msgpack bodies, as the hub's (whatever the client asks).
_MSGPACK = "application/x-msgpack"


def outcome_message(
    outcome: TaskOutcome, *, credit: int, max_size: int | None = None
) -> p.Done | p.Reject:
    """The message that reports ``outcome`` to the hub, returning ``credit``; a body larger
    than ``max_size`` is replaced by a FAILURE that says why."""
    if outcome.requeue:
        return p.Reject((p.Rejection(outcome.task_id, outcome.tag, credit=credit),))
    if max_size is not None and len(outcome.body) > max_size:
        return p.Done((_too_large(outcome, credit, max_size),))
    return p.Done((_result(outcome, credit),))


def outcome_frames(
    outcome: TaskOutcome, *, credit: int, max_size: int | None = None
) -> list[bytes]:
    """``encode(outcome_message(outcome, ...))``: the usual outcome's ``DONE`` made without the
    message around its result (a slot's thread makes one for every task: 0.6 us less, issue 18)."""
    if outcome.requeue or (max_size is not None and len(outcome.body) > max_size):
        return p.encode(outcome_message(outcome, credit=credit, max_size=max_size))
    return p.done_frames(_result(outcome, credit))


def _result(outcome: TaskOutcome, credit: int) -> p.ResultMessage:
    return p.ResultMessage(
        outcome.task_id,
        outcome.state,
        outcome.body,
        outcome.content_type,
        tag=outcome.tag,
        store=outcome.store,
        credit=credit,
        retry_eta=outcome.retry_eta,
        children=outcome.children,
    )


def _too_large(outcome: TaskOutcome, credit: int, max_size: int) -> p.ResultMessage:
    """A FAILURE made here, in place of a result body over ``max_size``."""
    size = len(outcome.body)
    _log.error("result_too_large", id=outcome.task_id, size=size, limit=max_size)
    info = p.FailureInfo("ResultTooLarge", "celeriac.exceptions", (too_big(size, max_size),))
    return p.ResultMessage(
        outcome.task_id,
        states.FAILURE,
        msgpack.packb(p.failure_map(info)),
        _MSGPACK,
        tag=outcome.tag,
        store=outcome.store,
        credit=credit,
        hub=True,
        children=outcome.children,
    )
