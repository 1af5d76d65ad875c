"""Expired chain steps and dead chord headers (issue 8): the failure path runs, nothing hangs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from celeriac import App, chain, chord, signals, states
from celeriac.exceptions import ChordError, TaskRevokedError
from celeriac.testing import TestWorker

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


@pytest.fixture
def revoked_signals() -> Iterator[list[dict[str, Any]]]:
    """Every task_revoked sent in this process while the test runs."""
    seen: list[dict[str, Any]] = []

    def on_revoked(sender: Any = None, **kw: Any) -> None:
        seen.append(kw)

    signals.task_revoked.connect(on_revoked)
    yield seen
    signals.task_revoked.disconnect(on_revoked)


def test_an_expired_chain_step_calls_its_errbacks_and_ends_the_chain(
    celeriac_app: App, celeriac_worker: TestWorker, revoked_signals: list[dict[str, Any]]
) -> None:
    """The second step of a chain has expired when the first ends: it does not run, it ends
    REVOKED (task_revoked with expired=True), its errback is called with its id, and the last
    step ends with TaskRevokedError instead of never coming."""
    ran: list[str] = []
    errbacks: list[str] = []
    done = threading.Event()

    @celeriac_app.task(name="ex.step", bind=True)
    def step(self: Any, *args: Any) -> int:
        ran.append(self.request.id)
        return 1

    @celeriac_app.task(name="ex.on_error")
    def on_error(task_id: str) -> None:
        errbacks.append(task_id)
        done.set()

    past = datetime.now(UTC) - timedelta(seconds=5)
    middle = step.s().set(expires=past).on_error(on_error.s())
    result = chain(step.s(), middle, step.s()).apply_async()
    with pytest.raises(TaskRevokedError):
        result.get(timeout=TIMEOUT)
    assert done.wait(TIMEOUT)
    middle_id = result.parent.id if result.parent is not None else None
    assert errbacks == [middle_id]
    assert result.parent is not None
    assert result.parent.state == states.REVOKED
    assert len(ran) == 1  # only the first step ran
    assert [s["expired"] for s in revoked_signals if s["request"].id == middle_id] == [True]


def test_a_revoked_header_task_fires_the_chords_error_path(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A header task revoked before the chord is sent never runs, yet the chord does not hang:
    the body ends with a ChordError naming it and the body's errback is called."""
    errbacks: list[str] = []
    called = threading.Event()

    @celeriac_app.task(name="ex.add")
    def add(x: int, y: int) -> int:
        return x + y

    @celeriac_app.task(name="ex.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    @celeriac_app.task(name="ex.chord_error")
    def chord_error(task_id: str) -> None:
        errbacks.append(task_id)
        called.set()

    celeriac_app.control.revoke("ex-revoked-header")
    header = [add.s(1, 1), add.s(2, 2).set(task_id="ex-revoked-header")]
    result = chord(header)(tsum.s().on_error(chord_error.s()))
    with pytest.raises(ChordError, match="ex-revoked-header"):
        result.get(timeout=TIMEOUT, follow_parents=False)
    with pytest.raises(TaskRevokedError):  # Celery's follow_parents: the header's own end
        result.get(timeout=TIMEOUT)
    assert called.wait(TIMEOUT)
    assert errbacks == [result.id]
