"""celeriac.testing: start_worker and the celeriac_app/celeriac_worker pytest fixtures."""

from __future__ import annotations

import datetime as dt
import decimal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from celeriac import App, states
from celeriac.exceptions import TaskRevokedError
from celeriac.testing import TestWorker, start_worker

pytestmark = pytest.mark.integration

TIMEOUT = 20.0


def test_round_trip(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """The fixtures give a working hub and worker: a task's result comes back."""

    @celeriac_app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert add.delay(2, 2).get(timeout=TIMEOUT) == 4
    celeriac_worker.join(TIMEOUT)
    assert celeriac_worker.statistics()["messages"] == 0


def test_join_reraises_a_task_failure(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """join() waits for the queues to drain and re-raises the first task failure."""

    @celeriac_app.task
    def boom(message: str) -> None:
        raise ValueError(message)

    boom.delay("kaput")
    with pytest.raises(ValueError, match="kaput"):
        celeriac_worker.join(TIMEOUT)
    celeriac_worker.join(TIMEOUT)  # the failure was reported once


def test_bound_task_sees_its_request(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """bind=True gives self.request with the id, the worker's hostname and the queue."""

    @celeriac_app.task(bind=True)
    def whoami(self: Any) -> list[Any]:
        req = self.request
        return [req.id, req.hostname, req.delivery_info["queue"]]

    result = whoami.delay()
    assert result.get(timeout=TIMEOUT) == [result.id, "test-worker@localhost", "celery"]


def test_countdown_delays_execution(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """countdown= holds the task at the hub until it is due."""

    @celeriac_app.task
    def now() -> float:
        return time.time()

    delivered = celeriac_worker.statistics()["delivered"]
    sent = time.time()
    result = now.apply_async(countdown=2.0)
    celeriac_app.flush(TIMEOUT)  # confirmed: stored at the hub, whose job the delay now is
    held = celeriac_worker.statistics()
    # (a worker-side countdown would have taken the delivery at once and kept it in memory)
    assert (held["delayed"], held["delivered"]) == (1, delivered)
    assert result.get(timeout=TIMEOUT) - sent >= 1.95
    assert celeriac_worker.statistics()["delivered"] == delivered + 1


def test_expired_task_is_revoked(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """A task whose expires is already past is not run and its state is REVOKED."""
    ran: list[int] = []

    @celeriac_app.task
    def never() -> None:
        ran.append(1)

    result = never.apply_async(expires=-1)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=TIMEOUT)
    assert result.state == states.REVOKED
    celeriac_worker.join(TIMEOUT)
    assert not ran


@pytest.mark.parametrize(
    "celeriac_config",
    [
        {
            "task_serializer": "msgpack",
            "result_serializer": "msgpack",
            "accept_content": ["json", "msgpack"],
        }
    ],
)
def test_msgpack_serializer(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """With task_serializer=msgpack (accepted by the worker) tasks and results round trip."""

    @celeriac_app.task
    def echo(*args: Any) -> list[Any]:
        return list(args)

    assert echo.delay(1, "two", b"\x00\xff", [3.5]).get(timeout=TIMEOUT) == [
        1,
        "two",
        b"\x00\xff",
        [3.5],
    ]
    assert echo.apply_async([7], serializer="json").get(timeout=TIMEOUT) == [7]


def test_json_round_trips_rich_types(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """datetime, date, Decimal, UUID and bytes survive json both ways."""
    values = [
        dt.datetime(2024, 5, 17, 12, 30, 1, 250000, tzinfo=dt.UTC),
        dt.date(2024, 5, 17),
        decimal.Decimal("3.14159265358979323846"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\x01binary\xff",
    ]

    @celeriac_app.task
    def echo(*args: Any) -> list[Any]:
        assert [type(a) for a in args] == [type(v) for v in values]
        return list(args)

    back = echo.delay(*values).get(timeout=TIMEOUT)
    assert back == values
    assert [type(v) for v in back] == [type(v) for v in values]


def test_async_result_state_and_forget(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """state is PENDING for an unknown id, SUCCESS once done; forget() drops the result."""

    @celeriac_app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert celeriac_app.AsyncResult(str(uuid.uuid4())).state == states.PENDING
    result = add.delay(1, 2)
    assert result.get(timeout=TIMEOUT) == 3
    assert result.state == states.SUCCESS
    assert celeriac_app.AsyncResult(result.id).state == states.SUCCESS
    assert result.ready()
    assert result.successful()
    result.forget()
    assert celeriac_app.AsyncResult(result.id).state == states.PENDING


def test_get_inside_a_task_raises(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """Calling get() inside a running task raises RuntimeError (it could deadlock the pool)."""

    @celeriac_app.task
    def add(x: int, y: int) -> int:
        return x + y

    @celeriac_app.task
    def waits() -> int:
        return add.delay(1, 1).get(timeout=TIMEOUT)

    with pytest.raises(RuntimeError, match="within a task"):
        waits.delay().get(timeout=TIMEOUT)
    celeriac_worker.join(TIMEOUT, reraise=False)


def test_class_task_keeps_state(tmp_path: Path) -> None:
    """A class-based task is an actor: state set in on_start lives across calls (one slot)."""
    app = App("kit", environ={})

    class Counter(app.Task):  # type: ignore[name-defined,misc]
        name = "kit.counter"

        def on_start(self) -> None:
            self.n = 0

        def run(self) -> int:
            self.n += 1
            return self.n

    counter = app.tasks["kit.counter"]
    with start_worker(app, concurrency=1, data_dir=tmp_path / "hub") as worker:
        assert [counter.delay().get(timeout=TIMEOUT) for _ in range(3)] == [1, 2, 3]
        worker.join(TIMEOUT)
    app.close()


def test_shared_task_binds_to_the_app_and_runs_on_its_worker(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A shared_task is registered on existing Apps (get_task finds it) and runs on the worker."""
    from celeriac import shared_task  # noqa: PLC0415 - the declaration is this test's subject

    name = f"kit.shared_mul_{uuid.uuid4().hex[:8]}"

    @shared_task(name=name)
    def mul(x: int, y: int) -> int:
        return x * y

    task = celeriac_app.get_task(name)
    assert task.name == name
    assert task.app is celeriac_app
    assert celeriac_app.tasks[name] is task
    assert task.delay(6, 7).get(timeout=TIMEOUT) == 42
    later = App("kit-later", environ={})
    later.finalize()
    assert later.get_task(name).app is later  # and on Apps created after the declaration
    later.close()


def test_calling_a_task_runs_it_here_not_on_a_worker(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """task(...) (Task.__call__) runs the function in this thread and publishes nothing."""
    import threading  # noqa: PLC0415

    @celeriac_app.task(bind=True)
    def where(self: Any, x: int) -> tuple[int, int]:
        return x, threading.get_ident()

    published = celeriac_worker.statistics()["published"]
    assert where(5) == (5, threading.get_ident())
    celeriac_app.flush(TIMEOUT)
    assert celeriac_worker.statistics()["published"] == published


def test_async_result_of_a_failure_has_result_traceback_and_failed(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """After a failure: AsyncResult.failed(), .result is the exception, .traceback the worker's."""

    @celeriac_app.task
    def boom(message: str) -> None:
        raise KeyError(message)

    result = boom.delay("no such key")
    with pytest.raises(KeyError):
        result.get(timeout=TIMEOUT)
    assert result.failed()
    assert not result.successful()
    assert isinstance(result.result, KeyError)
    assert result.result.args == ("no such key",)
    assert result.traceback is not None
    assert "raise KeyError(message)" in result.traceback

    @celeriac_app.task
    def fine() -> int:
        return 1

    one = fine.delay()
    assert one.get(timeout=TIMEOUT) == 1
    assert not one.failed()
    assert one.result == 1
    assert one.traceback is None
    celeriac_worker.join(TIMEOUT, reraise=False)


def test_threads_pool_statistics_name_each_slot_and_its_restarts(tmp_path: Path) -> None:
    """The threads pool's statistics(): one child per slot, alive, none restarted after work."""
    app = App("kit-stats", environ={})

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, concurrency=3, data_dir=tmp_path) as worker:
        assert add.delay(1, 1).get(timeout=TIMEOUT) == 2
        pool = worker.node.pool
        assert pool is not None
        stats = pool.statistics()
    assert (stats["name"], stats["count"], stats["active"], stats["restarts"]) == ("pool", 3, 3, 0)
    assert sorted(stats["children"]) == ["slot-0", "slot-1", "slot-2"]
    assert all(c["alive"] and c["last_failure"] is None for c in stats["children"].values())
    assert pool.statistics() == {}  # stopped: nothing to report
