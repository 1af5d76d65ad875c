"""Task states, with Celery's names and groupings."""

from __future__ import annotations

__all__ = [
    "ALL_STATES",
    "EXCEPTION_STATES",
    "FAILURE",
    "IGNORED",
    "PENDING",
    "PROPAGATE_STATES",
    "READY_STATES",
    "RECEIVED",
    "REJECTED",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "UNREADY_STATES",
]

PENDING = "PENDING"  #: not known to have been delivered yet (also: unknown id)
RECEIVED = "RECEIVED"  #: delivered to a worker, not finished
STARTED = "STARTED"  #: running (only reported with ``task_track_started``)
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
RETRY = "RETRY"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
#: The task raised ``Ignore``: it ended without a result (Celery's state). Unlike Celery,
#: celeriac stores it (so ``AsyncResult.state`` says IGNORED anywhere) and counts it as ready:
#: nothing more will come for that id.
IGNORED = "IGNORED"

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED, REJECTED, IGNORED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED, REJECTED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED, REJECTED})
ALL_STATES = READY_STATES | UNREADY_STATES
