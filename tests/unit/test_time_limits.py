"""Time limits: soft and hard limits on the threads pool (fake clock), and their precedence."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac._call_options import resolve_time_limits, time_limits
from celeriac._clock import FakeClock
from celeriac._compose import message_time_limits
from celeriac._protocol import TaskMessage
from celeriac._serialization import dumps, loads
from celeriac.actors.execution import TaskExecutor
from celeriac.actors.outcome import TaskOutcome
from celeriac.actors.pool import PoolWiring, ThreadPool
from celeriac.actors.task_actor import Delivery
from celeriac.actors.watchdog import Watchdog
from celeriac.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

WAIT = 10.0  # bound of every wait: a loaded 2-core machine can be slow


def delivery(name: str, *args: Any, timelimit: list[float | None] | None = None) -> Delivery:
    """A delivery as the hub would hand it to a slot."""
    task_id = uuid.uuid4().hex
    ct, body = dumps([list(args), {}, {}], "json")
    limits = (timelimit[0], timelimit[1]) if timelimit is not None else None
    message = TaskMessage(task_id, name, body, ct, timelimit=limits)
    return Delivery(message, "celery", tag=task_id)


def make_executor(app: App) -> TaskExecutor:
    """An executor as the worker makes one."""
    return TaskExecutor(
        app,
        hostname="test@localhost",
        accept=frozenset({"application/json"}),
        result_serializer="json",
    )


class Pool:
    """A threads pool whose replies land in a queue."""

    def __init__(self, app: App, clock: FakeClock, size: int = 1) -> None:
        self.replies: queue.Queue[tuple[int, dict[str, Any], Any]] = queue.Queue()
        self.lost: list[int] = []
        wiring = PoolWiring(lambda: make_executor(app), self._reply, self.lost.append, clock=clock)
        self.pool = ThreadPool(size, wiring)

    def _reply(self, index: int, outcome: TaskOutcome) -> None:
        done = {"id": outcome.task_id, "state": outcome.state, "ct": outcome.content_type}
        value = loads(outcome.body, outcome.content_type, frozenset({"application/json"}))
        self.replies.put((index, done, value))

    def run(self, d: Delivery, index: int = 0) -> tuple[dict[str, Any], Any]:
        """Submit and wait (bounded) for the outcome."""
        self.pool.submit(index, d)
        _, done, value = self.replies.get(timeout=WAIT)
        assert done["id"] == d.task.id
        return done, value


@pytest.fixture
def clock() -> FakeClock:
    """The pool's clock: limits pass only when the test says so."""
    return FakeClock()


@pytest.fixture
def app() -> App:
    """A fresh app (no hub is ever contacted)."""
    return App("tl", environ={})


@pytest.fixture
def pool(app: App, clock: FakeClock) -> Iterator[Pool]:
    """A one-slot threads pool on the fake clock."""
    p = Pool(app, clock)
    p.pool.start()
    assert p.pool.wait_ready(WAIT)
    yield p
    p.pool.stop(wait=False)


def advance_when(started: threading.Event, clock: FakeClock, pool: Pool, seconds: float) -> None:
    """Once the task runs, move the clock forward and wake the watchdog."""
    assert started.wait(WAIT), "the task did not start"
    clock.advance(seconds)
    pool.pool._watchdog.wake()


def test_soft_limit_raises_inside_a_python_loop_and_can_be_caught(
    app: App, clock: FakeClock, pool: Pool
) -> None:
    """The soft limit interrupts a busy pure-Python loop; the task catches it and returns."""
    started = threading.Event()

    @app.task(name="tl.spin_soft", soft_time_limit=5)
    def spin_soft() -> str:
        started.set()
        n = 0
        try:
            while True:
                n += 1
        except SoftTimeLimitExceeded:
            return "cleaned up"

    threading.Thread(target=advance_when, args=(started, clock, pool, 6), daemon=True).start()
    done, value = pool.run(delivery("tl.spin_soft"))
    assert (done["state"], value) == ("SUCCESS", "cleaned up")


def test_uncaught_soft_limit_fails_the_task(app: App, clock: FakeClock, pool: Pool) -> None:
    """A soft limit the task does not catch ends it FAILURE with SoftTimeLimitExceeded."""
    started = threading.Event()

    @app.task(name="tl.spin")
    def spin() -> None:
        started.set()
        while True:
            pass

    threading.Thread(target=advance_when, args=(started, clock, pool, 3), daemon=True).start()
    done, value = pool.run(delivery("tl.spin", timelimit=[2, None]))
    assert done["state"] == "FAILURE"
    assert value["exc_type"] == "SoftTimeLimitExceeded"
    assert value["exc_message"] == ["soft time limit (2s) exceeded"]


def test_hard_limit_fails_the_task_and_the_slot_keeps_serving(
    app: App, clock: FakeClock, pool: Pool
) -> None:
    """At the hard limit the task is FAILURE TimeLimitExceeded, even if it caught it; the
    same slot then runs the next task."""
    started = threading.Event()

    @app.task(name="tl.stubborn", time_limit=10)
    def stubborn() -> str:
        started.set()
        try:
            while True:
                pass
        except TimeLimitExceeded:
            return "I caught the hard limit"

    @app.task(name="tl.add")
    def add(x: int, y: int) -> int:
        return x + y

    threading.Thread(target=advance_when, args=(started, clock, pool, 11), daemon=True).start()
    done, value = pool.run(delivery("tl.stubborn"))
    assert done["state"] == "FAILURE"
    assert value["exc_type"] == "TimeLimitExceeded"
    assert value["exc_message"] == ["hard time limit (10s) exceeded"]
    done, value = pool.run(delivery("tl.add", 2, 3))
    assert (done["state"], value) == ("SUCCESS", 5)
    assert pool.lost == []  # the slot actor was never replaced


def test_hard_limit_is_raised_again_while_swallowed(app: App, clock: FakeClock, pool: Pool) -> None:
    """Code that swallows the first TimeLimitExceeded gets it again a second later."""
    started = threading.Event()
    swallowed = threading.Event()

    @app.task(name="tl.swallow", time_limit=1)
    def swallow() -> None:
        started.set()
        try:
            while True:
                pass
        except TimeLimitExceeded:
            swallowed.set()
        while True:
            pass

    def drive() -> None:
        advance_when(started, clock, pool, 2)
        assert swallowed.wait(WAIT)
        clock.advance(1.5)  # past the re-raise delay (refire=1s)
        pool.pool._watchdog.wake()

    threading.Thread(target=drive, daemon=True).start()
    done, value = pool.run(delivery("tl.swallow"))
    assert (done["state"], value["exc_type"]) == ("FAILURE", "TimeLimitExceeded")


def test_async_task_on_the_threads_pool_gets_its_soft_limit(app: App, pool: Pool) -> None:
    """An async def task run by a thread slot is cancelled at its (real, tiny) soft limit."""

    @app.task(name="tl.nap", soft_time_limit=0.05)
    async def nap() -> None:
        await asyncio.sleep(WAIT * 3)

    done, value = pool.run(delivery("tl.nap"))
    assert (done["state"], value["exc_type"]) == ("FAILURE", "SoftTimeLimitExceeded")


TRACED_DISARM = """
import sys, threading
from celeriac.actors.watchdog import _drop_own_pending

def helper():
    return 1

def body():
    sys.settrace(lambda *args: None)  # what coverage and debuggers do in each thread
    try:
        _drop_own_pending()
        for _ in range(100):
            helper()  # (on 3.11, a bare PyThreadState_SetAsyncExc(id, NULL) spun here)
    finally:
        sys.settrace(None)
    print("finished")

thread = threading.Thread(target=body)
thread.start()
thread.join()
"""


def test_dropping_a_fired_limit_does_not_hang_a_traced_thread(tmp_path: Path) -> None:
    """A thread running under a trace function (coverage) goes on after its limit is dropped."""
    # In a child process: the regression hangs the whole interpreter (no timeout can fire).
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(TRACED_DISARM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,  # (not the source tree, whose celeriac/ folder lacks the subpackages)
    )
    assert (done.returncode, done.stdout.strip()) == (0, "finished"), done.stderr


def test_watchdog_fires_nothing_after_disarm(clock: FakeClock) -> None:
    """A disarmed thread is never interrupted, however late the clock moves."""
    wd = Watchdog(clock)
    wd.arm(1, 2, "t1")
    armed = wd.disarm()
    assert armed is not None
    assert not armed.soft_fired
    assert not armed.hard_fired
    clock.advance(10)
    assert wd.check() is None  # nothing armed, nothing raised in this thread
    wd.stop()


# -- precedence: call > task option > setting --------------------------------------------------


def test_resolve_time_limits_precedence() -> None:
    """Each limit on its own: the call's value, else the task's option, else the setting."""
    app = App("prec", environ={})

    @app.task(name="prec.opt", time_limit=20, soft_time_limit=10)
    def opt() -> None: ...

    @app.task(name="prec.bare")
    def bare() -> None: ...

    assert resolve_time_limits(opt, 1, 2, 100, 200) == (1, 2)
    assert resolve_time_limits(opt, None, 2, 100, 200) == (10, 2)
    assert resolve_time_limits(opt, None, None, 100, 200) == (10, 20)
    assert resolve_time_limits(bare, None, 5, 100, 200) == (100, 5)
    assert resolve_time_limits(bare, None, None, None, None) == (None, None)
    assert resolve_time_limits(None, 0, None, 100, None) == (100, None)  # 0: not set


def test_class_task_attributes_are_task_options() -> None:
    """time_limit/soft_time_limit as class attributes of a class-based task count."""
    app = App("cls", environ={})

    class Slow(app.Task):  # type: ignore[name-defined,misc]
        name = "cls.slow"
        time_limit = 30

        def run(self) -> None: ...

    assert resolve_time_limits(app.tasks["cls.slow"], None, None, 1, 2) == (1, 30)


def test_client_header_carries_the_effective_limits() -> None:
    """The header timelimit is [soft, hard] after precedence (the setting fills the gaps)."""
    app = App("hdr", environ={}, task_time_limit=60, task_soft_time_limit=50)

    @app.task(name="hdr.opt", soft_time_limit=5)
    def opt() -> None: ...

    assert message_time_limits(app.conf, opt, None, None) == (5, 60)
    assert message_time_limits(app.conf, opt, 1, 2) == (1, 2)
    assert message_time_limits(app.conf, None, None, None) == (50, 60)
    assert message_time_limits(App("none", environ={}).conf, None, None, None) is None


def test_worker_applies_task_option_and_setting_when_the_header_has_none(app: App) -> None:
    """A message without limits gets the task's option, else the worker's setting."""
    app.conf.task_soft_time_limit = 300

    @app.task(name="tl.limits", bind=True, time_limit=400)
    def limits(self: Any) -> list[float | None]:
        return list(self.request.timelimit)

    executor = make_executor(app)
    for timelimit, expected in [
        (None, [300, 400]),
        ([None, 500], [300, 500]),
        ([100, None], [100, 400]),
    ]:
        d = delivery("tl.limits", timelimit=timelimit)
        outcome = executor.execute(d)
        assert outcome.state == "SUCCESS"
        assert (
            loads(outcome.body, outcome.content_type, frozenset({"application/json"})) == expected
        )


def test_time_limits_is_the_one_resolution_for_client_worker_and_prefork_parent() -> None:
    """The header form [soft, hard] (or none) is resolved against the task and the settings."""
    app = App("one", environ={}, task_time_limit=60, task_soft_time_limit=50)

    @app.task(name="one.opt", soft_time_limit=5)
    def opt() -> None: ...

    assert time_limits(opt, None, app.conf) == (5, 60)
    assert time_limits(opt, [None, 7], app.conf) == (5, 7)
    assert time_limits(None, [1, None], app.conf) == (1, 60)
    assert time_limits(None, None, App("none", environ={}).conf) == (None, None)
