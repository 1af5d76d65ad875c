"""The executor's outcome steps: a typed :class:`~.outcome.TaskOutcome` for each way a task ends.

Success, failure, retry, requeue (``Reject(requeue=True)``) and internal errors each become an
outcome here (whether the result is stored follows ``ignore_result`` and
``store_errors_even_if_ignored``); the worker's slot turns it into the wire message
(``runtime/outcomes.py``). Part of :class:`~.execution.TaskExecutor`.
"""

from __future__ import annotations

import dataclasses
import traceback as tb_module
from typing import TYPE_CHECKING, Any

from celeriac import signals, states
from celeriac._compression import split_content_type
from celeriac._log import get_logger
from celeriac._protocol import Delivery
from celeriac._serialization import dumps
from celeriac._task import Task
from celeriac.exceptions import Retry

from .invocation import Prepared
from .outcome import TaskOutcome, failure_outcome

if TYPE_CHECKING:
    from celeriac._app import App
    from celeriac._conf import Settings

__all__ = ["OutcomeSteps"]

_log = get_logger("celeriac.worker")


class OutcomeSteps:
    """The outcome-making steps of :class:`~.execution.TaskExecutor` (its attributes below)."""

    app: App
    conf: Settings
    result_serializer: str
    ignore_result_default: bool
    _instances: dict[str, Task[Any, Any]]

    def _internal_error(self, delivery: Delivery, exc: Exception) -> TaskOutcome:
        _log.exception("task_internal_error", task_id=delivery.task.id)
        trace = tb_module.format_exc()
        signals.task_internal_error.send(
            sender=None,
            task_id=delivery.task.id,
            args=None,
            kwargs=None,
            request=None,
            exception=exc,
            traceback=trace,
            einfo=None,
        )
        return self._failure(delivery, exc, trace)

    def _store(self, delivery: Delivery) -> bool:
        ignore = delivery.task.ignore_result
        return not (self.ignore_result_default if ignore is None else ignore)

    def _store_errors(self, delivery: Delivery) -> bool:
        """``store_errors_even_if_ignored`` (the task's option, else the setting)."""
        task = self._instances.get(delivery.task.task) or self.app.tasks.get(delivery.task.task)
        option = getattr(task, "store_errors_even_if_ignored", None)
        return bool(self.conf.task_store_errors_even_if_ignored if option is None else option)

    @staticmethod
    def _outcome(
        delivery: Delivery, state: str, content_type: str, body: bytes, store: bool
    ) -> TaskOutcome:
        m = delivery.task
        return TaskOutcome(m.id, delivery.tag, state, content_type, body, store, retries=m.retries)

    def _retry(self, p: Prepared, retry: Retry) -> TaskOutcome:
        """A RETRY outcome: the next attempt's body (same content type), run at ``retry.when``;
        the hub swaps it for the delivered message in one step (see celeriac._retry)."""
        m = p.delivery.task
        body, ct = m.body, m.content_type
        if retry.retry_args is not None or retry.retry_kwargs is not None:
            args = list(retry.retry_args if retry.retry_args is not None else p.args)
            kwargs = retry.retry_kwargs if retry.retry_kwargs is not None else p.kwargs
            ct, body = dumps([args, kwargs, p.embed or {}], *split_content_type(m.content_type))
        outcome = self._outcome(p.delivery, states.RETRY, ct, body, False)
        return dataclasses.replace(outcome, retry_eta=retry.when or 0.0)

    def _requeue(self, delivery: Delivery) -> TaskOutcome:
        """``Reject(requeue=True)``: an outcome that puts the message back in its queue at the
        hub (a ``REJ``, not a ``DONE``); no state is stored."""
        _log.info("task_requeued", task=delivery.task.task, task_id=delivery.task.id)
        outcome = self._outcome(delivery, states.REJECTED, "application/json", b"", False)
        return dataclasses.replace(outcome, requeue=True)

    def _failure(
        self,
        delivery: Delivery,
        exc: BaseException,
        trace: str | None,
        *,
        state: str = states.FAILURE,
    ) -> TaskOutcome:
        return failure_outcome(
            delivery.task.id,
            delivery.tag,
            exc,
            trace,
            serializer=self.result_serializer,
            compression=self.conf.result_compression,
            store=self._store(delivery) or self._store_errors(delivery),
            state=state,
            retries=delivery.task.retries,
        )
