"""Routing end to end on an in-process hub and workers (celeriac.testing; the real path, no eager
mode): topic routes, queues a worker consumes (-Q), unroutable errors, broadcast, priorities."""

from __future__ import annotations

import importlib.util
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack
import pytest

from celeriac import App, Broadcast, Queue
from celeriac.exceptions import PublishError
from celeriac.testing import start_hub, start_worker

from .conftest import wait_until

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(relative: str) -> ModuleType:
    """Import an example module under a unique name (examples share module names)."""
    name = f"example_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def routing_example(tmp_path: Path) -> Iterator[ModuleType]:
    """The routing example's app, isolated from the environment."""
    module = load_example("routing/tasks.py")
    yield module
    module.app.close()


def test_routing_example_sends_feed_tasks_to_the_feed_worker_only(
    routing_example: ModuleType, tmp_path: Path
) -> None:
    """import_feed reaches only the worker on feed_tasks; other tasks only the default one."""
    app: App = routing_example.app
    with (
        start_hub(app, tmp_path / "hub") as hub,
        start_worker(app, hub=hub, queues=["feed_tasks"], hostname="feeds@test"),
        start_worker(app, hub=hub, queues=["default"], hostname="main@test"),
    ):
        feeds = [routing_example.import_feed.delay(f"http://x/{i}") for i in range(6)]
        adds = [routing_example.add.delay(i, i) for i in range(6)]
        assert {r.get(timeout=10).split()[0] for r in feeds} == {"feeds@test"}
        assert {r.get(timeout=10).split()[0] for r in adds} == {"main@test"}


def test_unroutable_publish_raises_publish_error(tmp_path: Path) -> None:
    """A message no queue binds is refused: get() and flush() raise PublishError."""
    app = App("unroutable", environ={}, task_create_missing_queues=False)

    @app.task
    def ping() -> str:
        return "pong"

    with start_worker(app, data_dir=tmp_path):
        result = ping.apply_async(exchange="celery", routing_key="no.such.key")
        with pytest.raises(PublishError, match="unroutable"):
            result.get(timeout=10)
        with pytest.raises(PublishError, match="refused 1"):
            app.flush(10)
        assert ping.delay().get(timeout=10) == "pong"


def test_unroutable_goes_to_dead_letter_when_configured(tmp_path: Path) -> None:
    """With task_unroutable='dead_letter' the message is kept, not refused."""
    app = App("dlq", environ={}, task_unroutable="dead_letter")

    @app.task
    def ping() -> str:
        return "pong"

    with start_worker(app, data_dir=tmp_path) as worker:
        ping.apply_async(exchange="celery", routing_key="no.such.key")
        app.flush(10)
        assert worker.statistics()["queues"].get("celeriac.unroutable") == 1


def test_missing_queue_is_created_on_first_use(tmp_path: Path) -> None:
    """Sending to an undeclared queue creates it (task_create_missing_queues, the default)."""
    app = App("missing", environ={})

    @app.task
    def where() -> str:
        return "ran"

    with start_worker(app, data_dir=tmp_path, queues=["adhoc"]):
        assert where.apply_async(queue="adhoc").get(timeout=10) == "ran"


def test_broadcast_reaches_every_worker_once(tmp_path: Path) -> None:
    """A task on a Broadcast queue runs once on each consuming worker."""
    app = App("bcast", environ={})
    app.conf.task_queues = (Queue("celery"), Broadcast("everyone"))
    seen: list[str] = []
    lock = threading.Lock()

    @app.task(bind=True)
    def announce(self: Any) -> None:
        with lock:
            seen.append(self.request.hostname)

    with start_hub(app, tmp_path / "hub") as hub:
        names = ["a@test", "b@test", "c@test"]
        with (
            start_worker(app, hub=hub, queues=["celery", "everyone"], hostname=names[0]) as w,
            start_worker(app, hub=hub, queues=["celery", "everyone"], hostname=names[1]),
            start_worker(app, hub=hub, queues=["celery", "everyone"], hostname=names[2]),
        ):
            announce.apply_async(queue="everyone", ignore_result=True)
            w.join(10)
    assert sorted(seen) == names


def test_priority_order_on_a_priority_queue(tmp_path: Path) -> None:
    """Higher priority runs first on a queue with x-max-priority; FIFO within a priority."""
    app = App("prio", environ={})
    app.conf.task_queues = (Queue("celery", queue_arguments={"x-max-priority": 9}),)
    order: list[str] = []

    @app.task
    def step(label: str) -> None:
        order.append(label)

    with start_hub(app, tmp_path / "hub") as hub:
        plan = [("low-1", 1), ("high-1", 9), ("mid-1", 5), ("low-2", 1), ("high-2", 9)]
        for label, priority in plan:
            step.apply_async((label,), priority=priority)
        app.flush(10)
        with start_worker(app, hub=hub, concurrency=1) as worker:
            worker.join(10)
    assert order == ["high-1", "high-2", "mid-1", "low-1", "low-2"]


def test_fair_dispatch_long_task_does_not_hold_back_queued_work(tmp_path: Path) -> None:
    """A long task never holds back prefetched work: it is given back to the idle worker."""
    app = App("fair", environ={}, worker_prefetch_multiplier=4)
    release = threading.Event()
    ran_on: dict[str, str] = {}

    @app.task(bind=True)
    def job(self: Any, label: str, block: bool) -> str:
        if block:
            assert release.wait(20)
        ran_on[label] = self.request.hostname
        return label

    with (
        start_hub(app, tmp_path / "hub") as hub,
        start_worker(app, hub=hub, concurrency=1, hostname="busy@test"),
    ):
        # Alone on the hub, the busy worker takes the long task and prefetches 3 quick ones
        # (credit 1 slot x 4: one waits in the slot, run-ahead, two in the buffer); stuck
        # behind the long task, it must hand them all back (the slot's one is recalled).
        long = job.delay("long", True)
        quick = [job.delay(f"q{i}", False) for i in range(5)]
        app.flush(10)
        wait_until(lambda: hub.statistics()["redelivered"] >= 3, 10, "3 redeliveries")
        assert hub.statistics()["redelivered"] >= 3, hub.statistics()
        assert ran_on == {}
        with start_worker(app, hub=hub, concurrency=1, hostname="idle@test"):
            assert [r.get(timeout=10) for r in quick] == [f"q{i}" for i in range(5)]
            release.set()
            assert long.get(timeout=10) == "long"
    assert ran_on["long"] == "busy@test"
    assert {ran_on[f"q{i}"] for i in range(5)} == {"idle@test"}


def test_hub_publishes_events_and_tracks_started(tmp_path: Path) -> None:
    """A SUB socket sees worker-online, task-started and task-succeeded; state reads STARTED."""
    import zmq  # noqa: PLC0415 - only this test subscribes

    app = App("events", environ={}, task_track_started=True)
    running = threading.Event()
    release = threading.Event()

    @app.task
    def slow() -> str:
        running.set()
        assert release.wait(10)
        return "done"

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    seen: list[tuple[bytes, dict[str, Any]]] = []

    def read_until(topic: bytes, hostname: str | None = None) -> None:
        def found() -> bool:
            return any(
                t == topic and (hostname is None or h.get("hostname") == hostname) for t, h in seen
            )

        while not found() and sub.poll(5000):
            frames = sub.recv_multipart()
            seen.append((frames[0], msgpack.unpackb(frames[1])))
        assert found(), f"no {topic!r} event in {[t for t, _ in seen]}"

    try:
        with start_hub(app, tmp_path / "hub") as hub:
            assert hub.events_endpoint is not None
            sub.connect(hub.events_endpoint)
            with start_worker(app, hub=hub):
                result = slow.delay()
                assert running.wait(10)
                wait_until(lambda: result.state == "STARTED", 10, "the task to start")
                assert result.state == "STARTED"
                release.set()
                assert result.get(timeout=10) == "done"
                read_until(b"task-started")
                read_until(b"task-succeeded")
                # The subscription is live now (a late joiner misses earlier events): a worker
                # that joins from here on is announced, and so is its leaving.
                with start_worker(app, hub=hub, hostname="second@test"):
                    read_until(b"worker-online", "second@test")
                read_until(b"worker-offline", "second@test")
    finally:
        sub.close(0)
        ctx.term()
