"""The asyncio pool (-P asyncio): native async def tasks, sync tasks off the loop, pool signals,
time limits on coroutines; in-process (celeriac.testing) and through the real CLI."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App, signals
from celeriac.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celeriac.testing import start_worker

from .conftest import Spawner, clean_env, embed_if_free, wait_for_event, wait_until

pytestmark = pytest.mark.integration

WAIT = 10.0  # bound of every wait


@pytest.fixture
def app() -> App:
    """A fresh app for one in-process worker."""
    return App("aio", environ={})


@pytest.fixture
def connect() -> Iterator[Callable[[signals.Signal, Callable[..., Any]], None]]:
    """Connect signal receivers for this test only."""
    connected: list[tuple[signals.Signal, Callable[..., Any]]] = []

    def do(signal: signals.Signal, receiver: Callable[..., Any]) -> None:
        signal.connect(receiver)
        connected.append((signal, receiver))

    yield do
    for signal, receiver in connected:
        signal.disconnect(receiver)


def test_100_async_sleeps_run_at_once(app: App, tmp_path: Path) -> None:
    """100 tasks that each await asyncio.sleep(2) on -P asyncio -c 100 all sleep at once.

    Every task starts before the first one ends (how long the batch takes is for benchmarks).
    """

    @app.task(name="aio.nap")
    async def nap(i: int) -> list[float]:
        start = time.monotonic()
        await asyncio.sleep(2)
        return [i, start, time.monotonic()]

    with start_worker(app, pool="asyncio", concurrency=100, data_dir=tmp_path):
        results = [nap.delay(i) for i in range(100)]
        spans = [r.get(timeout=WAIT * 3) for r in results]
    assert [int(i) for i, _, _ in spans] == list(range(100))
    assert max(start for _, start, _ in spans) < min(end for _, _, end in spans)


def test_sync_task_runs_off_the_loop(app: App, tmp_path: Path) -> None:
    """A blocked sync task runs in a worker thread while async tasks keep finishing."""
    started, release = threading.Event(), threading.Event()

    @app.task(name="aio.blocking")
    def blocking() -> str:
        started.set()
        assert release.wait(WAIT)
        return threading.current_thread().name

    @app.task(name="aio.quick")
    async def quick() -> str:
        await asyncio.sleep(0.01)
        return threading.current_thread().name

    with start_worker(app, pool="asyncio", concurrency=4, data_dir=tmp_path):
        held = blocking.delay()
        assert started.wait(WAIT)
        loop_threads = {quick.delay().get(timeout=WAIT) for _ in range(5)}
        assert not held.ready()  # still blocked: the async tasks did not wait for it
        release.set()
        assert held.get(timeout=WAIT).startswith("celeriac-async-sync")
    assert loop_threads == {"celeriac-asyncio"}


def test_eventlet_pool_signals_fire(
    app: App, tmp_path: Path, connect: Callable[[signals.Signal, Callable[..., Any]], None]
) -> None:
    """eventlet_pool_started, _apply (target, args, kwargs), _preshutdown, _postshutdown."""
    seen: list[tuple[str, Any]] = []

    def record(name: str) -> Callable[..., None]:
        def receiver(sender: Any = None, **kwargs: Any) -> None:
            seen.append((name, kwargs))

        return receiver

    for sig in ("started", "apply", "preshutdown", "postshutdown"):
        connect(getattr(signals, f"eventlet_pool_{sig}"), record(sig))

    @app.task(name="aio.add")
    async def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, pool="asyncio", concurrency=2, data_dir=tmp_path):
        assert add.delay(2, y=3).get(timeout=WAIT) == 5
    names = [name for name, _ in seen]
    assert names == ["started", "apply", "preshutdown", "postshutdown"]
    apply = seen[1][1]
    assert (apply["target"].name, apply["args"], apply["kwargs"]) == ("aio.add", [2], {"y": 3})


def test_soft_limit_cancels_the_coroutine(app: App, tmp_path: Path) -> None:
    """At the soft limit the coroutine sees CancelledError: uncaught it is
    SoftTimeLimitExceeded, caught the task's value stands; the worker keeps serving."""
    cleaned = threading.Event()

    @app.task(name="aio.soft", soft_time_limit=0.2)
    async def soft() -> None:
        try:
            await asyncio.sleep(WAIT * 3)
        except asyncio.CancelledError:
            cleaned.set()
            raise

    @app.task(name="aio.soft_caught")
    async def soft_caught() -> str:
        try:
            await asyncio.sleep(WAIT * 3)
        except asyncio.CancelledError:
            return "cleaned up"
        return "slept"

    @app.task(name="aio.add")
    async def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, pool="asyncio", concurrency=2, data_dir=tmp_path):
        with pytest.raises(SoftTimeLimitExceeded):
            soft.delay().get(timeout=WAIT)
        assert cleaned.is_set()
        assert soft_caught.apply_async(soft_time_limit=0.2).get(timeout=WAIT) == "cleaned up"
        assert add.delay(1, 2).get(timeout=WAIT) == 3


def test_hard_limit_reports_failure_at_once(app: App, tmp_path: Path) -> None:
    """At the hard limit the task is FAILURE TimeLimitExceeded at once, even if the coroutine
    ignores the cancellation; the next task runs."""

    ignoring = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    @app.task(name="aio.hard", time_limit=0.3)
    async def hard() -> str:
        try:
            await asyncio.sleep(WAIT * 3)
        except asyncio.CancelledError:
            ignoring.set()  # ignores the cancellation until the test releases it
            for _ in range(int(WAIT * 3 / 0.01)):
                if release.is_set():
                    break
                await asyncio.sleep(0.01)
        finished.set()
        return "too late"

    @app.task(name="aio.add")
    async def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, pool="asyncio", concurrency=1, data_dir=tmp_path):
        with pytest.raises(TimeLimitExceeded):
            hard.delay().get(timeout=WAIT)
        # Reported without waiting for the coroutine: it is cancelled (maybe a moment after the
        # report) and cannot finish before the release below.
        assert ignoring.wait(WAIT)
        assert not finished.is_set()
        release.set()
        assert add.delay(1, 2).get(timeout=WAIT) == 3


def test_sync_task_hard_limit_on_the_asyncio_pool(app: App, tmp_path: Path) -> None:
    """A sync task in the pool's threads gets TimeLimitExceeded from the watchdog."""

    @app.task(name="aio.spin", time_limit=0.3)
    def spin() -> None:
        while True:
            pass

    @app.task(name="aio.add")
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, pool="asyncio", concurrency=1, data_dir=tmp_path):
        with pytest.raises(TimeLimitExceeded):
            spin.delay().get(timeout=WAIT)
        assert add.delay(1, 2).get(timeout=WAIT) == 3


CLI_TASKS = """
import asyncio
import time

from celeriac import App

app = App("aiotasks")


@app.task(name="aiotasks.nap")
async def nap(i):
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable with the test's process
    await asyncio.sleep(2)
    return [i, start, time.monotonic()]
"""


def test_cli_worker_asyncio_pool(
    procs: Spawner, broker_url: str, client: App, tmp_path: Path
) -> None:
    """`celeriac -A aiotasks worker -P asyncio -c 100`: 100 two-second sleeps all at once."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "aiotasks.py").write_text(textwrap.dedent(CLI_TASKS))
    argv = [sys.executable, "-m", "celeriac", "-A", "aiotasks", "worker", "--broker", broker_url]
    argv += embed_if_free(broker_url)  # given --broker, auto would wait for a hub
    argv += ["-P", "asyncio", "-c", "100", "--log-format", "json", "-l", "INFO"]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "embedded-hub"))
    worker = procs.spawn("worker", argv, cwd=app_dir, env=env)
    ready = wait_for_event(worker.log, "worker_ready", proc=worker)
    assert (ready["pool"], ready["concurrency"]) == ("asyncio", 100)
    results = [client.send_task("aiotasks.nap", [i]) for i in range(100)]
    spans = [r.get(timeout=WAIT * 3) for r in results]
    assert [int(i) for i, _, _ in spans] == list(range(100))
    assert max(start for _, start, _ in spans) < min(end for _, _, end in spans)


def test_asyncio_pool_statistics_count_applied_and_completed(app: App, tmp_path: Path) -> None:
    """The asyncio pool's statistics(): its size, and tasks applied, completed and running."""

    @app.task(name="aio.add")
    async def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, pool="asyncio", concurrency=7, data_dir=tmp_path) as worker:
        pool = worker.node.pool
        assert pool is not None
        before = pool.statistics()
        assert (before["pool"], before["size"], before["running"]) == ("asyncio", 7, 0)
        assert [add.delay(i, i).get(timeout=WAIT) for i in range(3)] == [0, 2, 4]
        worker.join(WAIT)
        # "completed" counts before "running" drops: wait for both (seen flaky once otherwise).
        wait_until(
            lambda: (
                (s := pool.statistics())["completed"] >= before["completed"] + 3
                and s["running"] == 0
            ),
            WAIT,
            "the pool's counters to settle",
        )
        after = pool.statistics()
    assert after["applied"] == before["applied"] + 3
    assert after["completed"] == before["completed"] + 3
    assert after["running"] == 0
