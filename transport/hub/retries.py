"""Retries at the hub: a RETRY outcome swaps the delivered message for its next attempt.

How it works
------------
A worker whose task called ``self.retry()`` (or hit ``autoretry_for``) sends a ``DONE`` item
with state RETRY, ``retry_eta`` (when to run again; 0: now) and as its body the next attempt's
task body. :meth:`Retries._retry` replaces the stored message, under the same id, with
``retries + 1``, that eta and body, and queues it (delayed until the eta): the removal and the
new row are written in the same loop turn's commit, so there is never a moment where the task
is stored twice or not at all. A RETRY for a delivery the hub no longer holds (already
completed, or requeued to another worker after a loss) changes nothing. No result is stored: a
``STAT`` answers RETRY while the next attempt waits.
"""

from __future__ import annotations

import dataclasses

from .. import protocol as p
from ..store import StoredMessage
from .queues import Queues


class Retries(Queues):
    """RETRY outcomes: the message's next attempt, in place."""

    def _retry(self, result: p.ResultMessage) -> None:
        tag = result.delivery_tag
        held = self._messages.get(tag)
        if held is None or held.copy:
            return
        self._release(held)
        task = dataclasses.replace(
            held.task,
            retries=held.task.retries + 1,
            eta=result.retry_eta or None,
            body=result.body,
            content_type=result.content_type,
        )
        held.task, held.eta, held.started, held.light = task, task.eta, False, False
        self.store.remove_message(tag)
        header = p.task_header(task)
        self.store.add_message(
            StoredMessage(tag, held.queue, held.priority, held.eta, held.seq, header, task.body)
        )
        self._keep_body(held)
        self.counters["retried"] = self.counters.get("retried", 0) + 1
        self._task_event(b"task-retried", result.id, lambda: p.result_header(result))
        self._enqueue(held, self.clock.time())
