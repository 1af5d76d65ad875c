"""Results of failed tasks without propagation, Reject with and without requeue, Ignore, limits."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App, states
from celeriac.exceptions import Ignore, ImproperlyConfigured, Reject
from celeriac.testing import TestWorker

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


def test_get_without_propagate_returns_the_exception(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """get(propagate=False) on a failed task returns the rebuilt exception, as .result does."""

    @celeriac_app.task
    def boom(message: str) -> None:
        raise ValueError(message)

    result = boom.delay("kaput")
    value: Any = result.get(timeout=TIMEOUT, propagate=False)
    assert isinstance(value, ValueError)
    assert value.args == ("kaput",)
    assert result.failed()
    assert type(result.result) is ValueError
    celeriac_worker.join(TIMEOUT, reraise=False)


def test_reject_with_requeue_puts_the_message_back(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """raise Reject(requeue=True) sends the message back to its queue; it then runs again."""
    runs: list[int] = []

    @celeriac_app.task(bind=True)
    def picky(self: Any) -> int:
        runs.append(1)
        if len(runs) == 1:
            raise Reject("not yet", requeue=True)
        return len(runs)

    result = picky.delay()
    assert result.get(timeout=TIMEOUT) == 2
    assert result.state == states.SUCCESS
    assert celeriac_worker.statistics()["redelivered"] >= 1
    celeriac_worker.join(TIMEOUT)


def test_reject_without_requeue_ends_the_task_rejected(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """raise Reject() (no requeue) ends the task REJECTED and it does not run again."""
    runs: list[int] = []

    @celeriac_app.task
    def refuse() -> None:
        runs.append(1)
        raise Reject("never")

    result = refuse.delay()
    with pytest.raises(Reject):
        result.get(timeout=TIMEOUT)
    assert result.state == states.REJECTED
    celeriac_worker.join(TIMEOUT)
    assert runs == [1]


def test_call_with_soft_limit_above_hard_limit_is_refused_before_sending(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """apply_async(soft_time_limit=2, time_limit=1) raises at once and publishes nothing."""

    @celeriac_app.task
    def quick() -> int:
        return 1

    with pytest.raises(ImproperlyConfigured, match="soft_time_limit must be less than or equal"):
        quick.apply_async(soft_time_limit=2, time_limit=1)
    assert quick.delay().get(timeout=TIMEOUT) == 1
    celeriac_worker.join(TIMEOUT)
    assert celeriac_worker.statistics()["published"] == 1


def test_ignore_raised_by_a_task_acks_it_and_ends_ignored(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """raise Ignore(): the message is acknowledged, the task ends IGNORED (Celery's state), no
    failure is reported."""
    runs: list[int] = []

    @celeriac_app.task
    def skip() -> None:
        runs.append(1)
        raise Ignore()

    before = celeriac_worker.statistics()
    sent = skip.delay()
    celeriac_worker.join(TIMEOUT)  # re-raises a failure, had Ignore been taken for one
    after = celeriac_worker.statistics()
    assert runs == [1]
    assert after["acked"] == before["acked"] + 1
    assert sent.state == states.IGNORED
