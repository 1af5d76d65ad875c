"""A task's outcome as the ``DONE`` message the hub expects: the one place it is converted.

The executor (:mod:`celeriac.actors.execution`) returns a typed
:class:`~celeriac.actors.outcome.TaskOutcome`; the worker's connection sends it to the hub as
``DONE`` (acknowledgement, result, one credit back). The typed wire protocol will replace this
function; nothing else builds a ``DONE`` from an outcome.
"""

from __future__ import annotations

from typing import Any

from celeriac.actors.outcome import TaskOutcome

__all__ = ["done_message"]


def done_message(outcome: TaskOutcome, *, credit: int) -> tuple[dict[str, Any], bytes]:
    """The ``DONE`` header and body for ``outcome``, returning ``credit`` to the hub; for an
    outcome that asks for a requeue, the ``REJ`` header (and no body)."""
    if outcome.requeue:
        rej: dict[str, Any] = {"id": outcome.task_id, "requeue": True, "credit": credit}
        if outcome.tag is not None:
            rej["tag"] = outcome.tag
        return rej, b""
    done: dict[str, Any] = {
        "id": outcome.task_id,
        "state": outcome.state,
        "ct": outcome.content_type,
    }
    if not outcome.store:
        done["store"] = False
    if outcome.tag is not None:
        done["tag"] = outcome.tag
    done["credit"] = credit
    return done, outcome.body
