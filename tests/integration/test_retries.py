"""self.retry, max_retries and autoretry_for on a real hub and worker (the in-process kit)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from celeriac import App, signals, states
from celeriac.exceptions import MaxRetriesExceededError
from celeriac.testing import TestWorker

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


def test_retry_runs_again_with_the_same_id_and_more_retries(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A task retrying twice runs three times under one id, request.retries 0, 1, 2."""
    seen: list[tuple[str, int]] = []
    retried: list[str] = []

    @celeriac_app.task(bind=True, name="rt.flaky")
    def flaky(self: Any) -> int:
        seen.append((self.request.id, self.request.retries))
        if self.request.retries < 2:
            raise self.retry(countdown=0)
        return int(self.request.retries)

    def on_retry(sender: Any = None, request: Any = None, **_: Any) -> None:
        retried.append(request.id)

    signals.task_retry.connect(on_retry)
    try:
        result = flaky.delay()
        assert result.get(timeout=TIMEOUT) == 2
    finally:
        signals.task_retry.disconnect(on_retry)
    assert seen == [(result.id, 0), (result.id, 1), (result.id, 2)]
    assert retried == [result.id, result.id]
    celeriac_worker.join(TIMEOUT)


def test_retry_waits_for_its_countdown(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """retry(countdown=0.3): the next attempt starts no earlier than 0.3 s later."""
    starts: list[float] = []

    @celeriac_app.task(bind=True, name="rt.later")
    def later(self: Any) -> None:
        starts.append(time.time())
        if not self.request.retries:
            raise self.retry(countdown=0.3)

    later.delay().get(timeout=TIMEOUT)
    assert len(starts) == 2
    assert starts[1] - starts[0] >= 0.3


def test_retry_stops_at_max_retries(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """A task always retrying with max_retries=2 runs 3 times, then MaxRetriesExceededError."""
    runs: list[int] = []

    @celeriac_app.task(bind=True, name="rt.always", max_retries=2)
    def always(self: Any) -> None:
        runs.append(self.request.retries)
        raise self.retry(countdown=0)

    result = always.delay()
    with pytest.raises(MaxRetriesExceededError):
        result.get(timeout=TIMEOUT)
    assert runs == [0, 1, 2]
    assert result.state == states.FAILURE
    celeriac_worker.join(TIMEOUT, reraise=False)


def test_retry_with_new_arguments(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """retry(args=...) runs the next attempt with those arguments."""

    @celeriac_app.task(bind=True, name="rt.args")
    def with_args(self: Any, n: int) -> int:
        if n < 3:
            raise self.retry(args=(n + 1,), countdown=0)
        return n

    assert with_args.delay(0).get(timeout=TIMEOUT) == 3


def test_autoretry_with_backoff_ends_with_the_original_error(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """autoretry_for + retry_backoff: retried max_retries times with growing delays, then the
    task's own exception (Celery's behaviour when retry gets exc=)."""
    starts: list[float] = []

    @celeriac_app.task(
        bind=True,
        name="rt.auto",
        autoretry_for=(KeyError,),
        retry_backoff=0.1,
        retry_jitter=False,
        max_retries=2,
    )
    def auto(self: Any) -> None:
        starts.append(time.time())
        raise KeyError("missing")

    with pytest.raises(KeyError):
        auto.delay().get(timeout=TIMEOUT)
    assert len(starts) == 3
    assert starts[1] - starts[0] >= 0.1
    assert starts[2] - starts[1] >= 0.2
    celeriac_worker.join(TIMEOUT, reraise=False)


def test_dont_autoretry_for_fails_at_once(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """An exception in dont_autoretry_for is not retried even if autoretry_for covers it."""
    runs: list[int] = []

    @celeriac_app.task(
        name="rt.never",
        autoretry_for=(LookupError,),
        dont_autoretry_for=(IndexError,),
        retry_kwargs={"countdown": 0},
    )
    def never() -> None:
        runs.append(1)
        raise IndexError("no")

    with pytest.raises(IndexError):
        never.delay().get(timeout=TIMEOUT)
    assert runs == [1]
    celeriac_worker.join(TIMEOUT, reraise=False)
