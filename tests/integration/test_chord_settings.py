"""The chord settings on a real hub and worker: errbacks on the header when allowed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from celeriac import App, chord
from celeriac.exceptions import ChordError
from celeriac.testing import TestWorker

from .conftest import wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


def _chord_with_errback(app: App) -> tuple[Any, list[tuple[Any, ...]], Any]:
    """A chord (a header task fails) whose errback, linked to the chord, records its calls."""
    calls: list[tuple[Any, ...]] = []
    lock = threading.Lock()

    @app.task(name="cs.ok")
    def ok() -> int:
        return 1

    @app.task(name="cs.boom")
    def boom() -> None:
        raise ValueError("header failed")

    @app.task(name="cs.body")
    def body(values: list[Any]) -> None:
        raise AssertionError("the body must not run")

    @app.task(name="cs.errback")
    def errback(*args: Any) -> None:
        with lock:
            calls.append(args)

    flow = chord([ok.s(), boom.s()], body.s())
    flow.link_error(errback.s())
    return flow, calls, boom


@pytest.mark.parametrize("on_header", [False, True])
def test_chord_errbacks_reach_the_header_only_when_allowed(
    celeriac_app: App, celeriac_worker: TestWorker, on_header: bool
) -> None:
    """task_allow_error_cb_on_chord_header=False (Celery's default): the chord's errback is
    called once, for the body (with its id); True: also by the failed header task (no args)."""
    celeriac_app.conf.task_allow_error_cb_on_chord_header = on_header
    flow, calls, _ = _chord_with_errback(celeriac_app)
    result = flow.apply_async()
    with pytest.raises(ChordError):
        result.get(timeout=TIMEOUT, follow_parents=False)
    wait_until(lambda: len(calls) >= (2 if on_header else 1), TIMEOUT, "the errback calls")
    celeriac_worker.join(TIMEOUT, reraise=False)
    expected = [(result.id,), ()] if on_header else [(result.id,)]
    assert sorted(calls, key=len, reverse=True) == expected
