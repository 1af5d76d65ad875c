"""A task's outcome as the message the hub expects: the one place it is converted.

The executor (:mod:`celeriac.actors.execution`) returns a typed
:class:`~celeriac.actors.outcome.TaskOutcome`; the worker's slot turns it into a protocol
message here: a ``DONE`` (acknowledgement, result, credit back) or, for ``Reject(requeue=True)``,
a ``REJ`` that puts the message back in its queue.
"""

from __future__ import annotations

from celeriac.actors.outcome import TaskOutcome
from celeriac.transport import protocol as p

__all__ = ["outcome_message"]


def outcome_message(outcome: TaskOutcome, *, credit: int) -> p.Done | p.Reject:
    """The message that reports ``outcome`` to the hub, returning ``credit``."""
    if outcome.requeue:
        return p.Reject((p.Rejection(outcome.task_id, outcome.tag, credit=credit),))
    result = p.ResultMessage(
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
    return p.Done((result,))
