"""Revoke of tasks a worker holds (issue 8): terminate stops a running task (threads, asyncio
pools in process; prefork with real processes), a prefetched one never starts, and
``task_revoked`` says how (terminated, signum, expired)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import App, chord, signals, signature, states
from celeriac.exceptions import ChordError, TaskRevokedError
from celeriac.testing import start_worker

from .conftest import RESULT_TIMEOUT, wait_until
from .test_prefork import Prefork, events, pf  # noqa: F401 - pf: the fixture, used by name

pytestmark = pytest.mark.integration


@pytest.fixture
def revoked_signals() -> Iterator[list[dict[str, Any]]]:
    """Every task_revoked sent in this process while the test runs."""
    seen: list[dict[str, Any]] = []

    def on_revoked(sender: Any = None, **kw: Any) -> None:
        seen.append({"task": getattr(sender, "name", None), **kw})

    signals.task_revoked.connect(on_revoked)
    yield seen
    signals.task_revoked.disconnect(on_revoked)


def _app(name: str) -> App:
    return App(name, environ={})


@pytest.mark.parametrize("pool", ["threads", "asyncio"])
def test_terminate_stops_a_running_task_and_it_ends_revoked(
    pool: str, tmp_path: Any, revoked_signals: list[dict[str, Any]]
) -> None:
    """A running task revoked with terminate=True stops (its loop never finishes), ends
    REVOKED, the worker goes on serving, and task_revoked has terminated=True and the signum."""
    app = _app(f"term-{pool}")
    started, finished = threading.Event(), threading.Event()

    @app.task(name="term.spin")
    def spin() -> str:
        started.set()
        for _ in range(1200):  # 60 s in short sleeps: an async exception lands between them
            time.sleep(0.05)
        finished.set()
        return "finished"

    @app.task(name="term.aspin")
    async def aspin() -> str:
        started.set()
        await asyncio.sleep(60)
        finished.set()
        return "finished"

    @app.task(name="term.add")
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, pool=pool, concurrency=2, data_dir=tmp_path / "hub"):
        result = (aspin if pool == "asyncio" else spin).delay()
        assert started.wait(RESULT_TIMEOUT)
        result.revoke(terminate=True, signal="SIGUSR1")
        with pytest.raises(TaskRevokedError):
            result.get(timeout=RESULT_TIMEOUT)
        assert result.state == states.REVOKED
        assert not finished.is_set()
        assert add.delay(2, 3).get(timeout=RESULT_TIMEOUT) == 5
    (seen,) = [s for s in revoked_signals if s["request"].id == result.id]
    assert seen["terminated"] is True
    assert seen["signum"] == signal.SIGUSR1
    assert seen["expired"] is False


def test_a_prefetched_task_revoked_never_runs_and_fires_task_revoked(
    tmp_path: Any, revoked_signals: list[dict[str, Any]]
) -> None:
    """One slot busy, the next task prefetched by the worker: revoking that one (no terminate)
    ends it REVOKED without running; the running one finishes normally."""
    app = _app("prefetched")
    gate = threading.Event()
    ran: list[str] = []

    @app.task(name="pf.block", bind=True)
    def block(self: Any) -> str:
        ran.append(self.request.id)
        gate.wait(RESULT_TIMEOUT)
        return "done"

    with start_worker(app, pool="solo", data_dir=tmp_path / "hub") as worker:
        first = block.delay()
        wait_until(lambda: len(ran) == 1, RESULT_TIMEOUT, "the first task started")
        second = block.delay()
        wait_until(
            lambda: second.state == states.RECEIVED,  # prefetched by the busy worker
            RESULT_TIMEOUT,
            "the second task reached the worker",
        )
        second.revoke()
        gate.set()
        assert first.get(timeout=RESULT_TIMEOUT) == "done"
        with pytest.raises(TaskRevokedError):
            second.get(timeout=RESULT_TIMEOUT)
        del worker
    assert ran == [first.id]
    (seen,) = [s for s in revoked_signals if s["request"].id == second.id]
    assert (seen["terminated"], seen["signum"], seen["expired"]) == (False, None, False)


def test_prefork_terminate_signals_the_child_even_in_a_blocking_call(
    pf: Prefork,  # noqa: F811 - the imported fixture
    broker_url: str,
    client: App,
) -> None:
    """-P prefork: a task blocked in time.sleep is stopped by signalling its child; it ends
    REVOKED, it is never run again, the child is replaced and the node keeps serving."""
    node = pf.start(broker_url, c=1)
    looping = client.send_task("pf.forever")
    wait_until(pf.started, RESULT_TIMEOUT, "the task started", proc=node)
    looping.revoke(terminate=True)  # SIGTERM: the child dies of it, no warm shutdown
    with pytest.raises(TaskRevokedError):
        looping.get(timeout=RESULT_TIMEOUT)
    assert client.send_task("pf.record").get(timeout=RESULT_TIMEOUT) > 0
    killed = [r for r in events(node, "child_exited") if r["task_id"] == looping.id]
    assert killed[0]["signal"] == "SIGTERM"
    assert [tid for tid, _ in pf.started()].count(looping.id) == 1
    assert events(node, "task_terminated")[0]["task_id"] == looping.id


def test_a_dead_lettered_chord_header_task_fires_the_chords_error_path(
    pf: Prefork,  # noqa: F811 - the imported fixture
    broker_url: str,
    client: App,
) -> None:
    """A header task that kills its child process every time is dead-lettered: the chord
    still ends, its body with a ChordError naming that task, instead of never firing."""
    pf.start(broker_url, env={"CELERIAC_BROKER_MAX_DELIVERIES": "2"})
    header = [signature("pf.record", app=client), signature("pf.die", app=client)]
    result = chord(header)(signature("pf.record", app=client))
    dying = result.parent.results[1].id if result.parent is not None else "?"
    with pytest.raises(ChordError, match=dying):
        result.get(timeout=RESULT_TIMEOUT, follow_parents=False)
