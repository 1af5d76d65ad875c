"""Events: Celery's event types, an in-memory :class:`State` for monitors, and
``app.events.Receiver`` (the socket side lives in :mod:`celeriac.runtime.events`).

The hub publishes events on its PUB socket (``hub_events_url``, by default the broker port + 1):
its own (``worker-online``, ``worker-offline``, ``task-started`` and each task's outcome, with id
and state, whatever the workers say) and those workers and clients send through it with
Celery's fields: ``task-sent`` (``task_send_sent_event``), ``task-received``, ``task-started``,
``task-succeeded`` (``runtime``, ``result``), ``task-failed`` (``exception``, ``traceback``),
``task-rejected``, ``task-revoked``, ``task-retried`` (``worker_send_task_events``, ``-E``,
``enable_events``), and ``worker-heartbeat`` (``active``, ``processed``, ``loadavg``, ``freq``).
Events may be lost (PUB drops for slow readers): they are for monitors, never for tasks.
"""

from __future__ import annotations

from .state import TASK_EVENT_STATES, State, TaskView, WorkerView

__all__ = ["TASK_EVENT_STATES", "State", "TaskView", "WorkerView"]
