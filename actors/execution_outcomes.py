"""The executor's outcome steps: a typed :class:`~.outcome.TaskOutcome` for each way a task ends.

Success, failure, retry, requeue (``Reject(requeue=True)``), revoked, replaced and internal
errors each become an outcome here; whether the result is stored follows ``ignore_result`` and
``store_errors_even_if_ignored``; what follows a task in its canvas is published and confirmed
by the hub before the outcome acknowledges the task (``_then``). The worker's slot turns the
outcome into the wire message (``runtime/outcomes.py``). Part of
:class:`~.execution.TaskExecutor`.
"""

from __future__ import annotations

import dataclasses
import traceback as tb_module
from typing import TYPE_CHECKING, Any

from celeriac import signals, states
from celeriac._canvas_flow import Replaced, Send, after_failure, send_all
from celeriac._compression import split_content_type
from celeriac._log import get_logger
from celeriac._protocol import Delivery
from celeriac._replace import plan_replace
from celeriac._request import Request
from celeriac._serialization import dumps
from celeriac._task import Task
from celeriac.exceptions import Retry, TaskRevokedError

from .invocation import Prepared
from .outcome import TaskOutcome, failure_outcome

if TYPE_CHECKING:
    from celeriac._app import App
    from celeriac._conf import Settings

__all__ = ["OutcomeSteps"]

_log = get_logger("celeriac.worker")

#: Seconds a worker waits for the hub to confirm a chain's next step before giving up (and
#: requeueing the step that ran).
_CANVAS_CONFIRM_TIMEOUT = 30.0


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

    def _revoked(
        self,
        task: Task[Any, Any],
        delivery: Delivery,
        request: Request,
        embed: Any,
        *,
        reason: str,
        expired: bool = False,
        signum: int | None = None,
    ) -> TaskOutcome:
        """A revoked, expired or terminated task: REVOKED, ``task_revoked`` (Celery's
        arguments), then its errbacks and the rest of its chain ended (see _canvas_flow)."""
        terminated = reason == "terminated"
        _log.info("task_revoked", task=task.name, task_id=request.id, reason=reason)
        signals.task_revoked.send(
            sender=task, request=request, terminated=terminated, signum=signum, expired=expired
        )
        exc = TaskRevokedError(reason)
        outcome = self._failure(delivery, exc, None, state=states.REVOKED)
        return self._then(outcome, after_failure(embed, request, exc, None, self.app))

    def _then(self, outcome: TaskOutcome, sends: list[Send]) -> TaskOutcome:
        """Publish what follows the task (chain, callbacks, errbacks) and wait for the hub to
        confirm it, before the outcome acknowledges the task; if that fails, requeue the task
        (it runs again and re-sends the same frozen ids, duplicates the hub drops)."""
        if not sends:
            return outcome
        try:
            send_all(sends)
            self.app.flush(_CANVAS_CONFIRM_TIMEOUT)
        except Exception:
            _log.exception("canvas_send_failed", task_id=outcome.task_id)
            return dataclasses.replace(outcome, requeue=True)
        return outcome

    def _replace(self, p: Prepared, replaced: Replaced) -> TaskOutcome:
        """``Task.replace(sig)``: the hub swaps the message for one that runs ``sig`` under
        the same id, now (a RETRY outcome at eta 0; see celeriac._canvas_flow.Replaced)."""
        m = p.delivery.task
        sends, args, kwargs, embed = plan_replace(replaced.sig, p.embed, p.request, self.app)
        ct, body = dumps([args, kwargs, embed], m.content_type)
        _log.info("task_replaced", task=p.task.name, task_id=m.id, by=replaced.sig.task)
        outcome = self._outcome(p.delivery, states.RETRY, ct, body, False)
        return self._then(dataclasses.replace(outcome, retry_eta=0.0), sends)
