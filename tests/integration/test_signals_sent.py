"""Signals arrive where Celery sends them, with their arguments: publish, task, worker lifecycle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App, signals
from celeriac.testing import start_worker

pytestmark = pytest.mark.integration

TIMEOUT = 20.0

WATCHED = (
    "before_task_publish",
    "after_task_publish",
    "task_received",
    "task_prerun",
    "task_postrun",
    "task_success",
    "task_failure",
    "celeryd_init",
    "celeryd_after_setup",
    "worker_init",
    "worker_ready",
    "worker_shutting_down",
    "worker_shutdown",
)


class Recorder:
    """Records (signal name, sender, arguments) of every watched signal, in arrival order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.receivers: list[tuple[signals.Signal, Any]] = []
        for name in WATCHED:
            signal = getattr(signals, name)

            def receive(sender: Any = None, _name: str = name, **kwargs: Any) -> None:
                kwargs.pop("signal", None)
                with self._lock:
                    self.calls.append((_name, sender, kwargs))

            signal.connect(receive)
            self.receivers.append((signal, receive))

    def names(self) -> list[str]:
        """The names of the signals received so far, in order."""
        with self._lock:
            return [name for name, _, _ in self.calls]

    def of(self, name: str) -> list[tuple[Any, dict[str, Any]]]:
        """(sender, arguments) of each arrival of one signal."""
        with self._lock:
            return [(sender, kw) for n, sender, kw in self.calls if n == name]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Watch the signals for this test only."""
    rec = Recorder()
    yield rec
    for signal, receiver in rec.receivers:
        signal.disconnect(receiver)


def test_task_signals_arrive_with_their_arguments(recorder: Recorder, tmp_path: Path) -> None:
    """publish, received, prerun, postrun and success carry the task's id, args and outcome."""
    app = App("sigs", environ={})

    @app.task(name="sigs.add")
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, data_dir=tmp_path) as worker:
        result = add.delay(2, 3)
        assert result.get(timeout=TIMEOUT) == 5
        worker.join(TIMEOUT)
        app.flush(TIMEOUT)
    tid = result.id

    ((sender, before),) = recorder.of("before_task_publish")
    assert sender == "sigs.add"
    assert (before["headers"]["id"], before["headers"]["task"]) == (tid, "sigs.add")
    assert (before["exchange"], before["routing_key"]) == ("celery", "celery")
    ((sender, after),) = recorder.of("after_task_publish")
    assert sender == "sigs.add"
    assert after["headers"]["id"] == tid
    assert after["routing_key"] == "celery"
    ((_, received),) = recorder.of("task_received")
    assert (received["request"].id, received["request"].args) == (tid, (2, 3))
    ((sender, prerun),) = recorder.of("task_prerun")
    assert sender is add
    assert (prerun["task_id"], prerun["task"], list(prerun["args"]), prerun["kwargs"]) == (
        tid,
        add,
        [2, 3],
        {},
    )
    ((sender, postrun),) = recorder.of("task_postrun")
    assert sender is add
    assert (postrun["task_id"], postrun["retval"], postrun["state"]) == (tid, 5, "SUCCESS")
    ((sender, success),) = recorder.of("task_success")
    assert (sender, success["result"]) == (add, 5)
    assert recorder.of("task_failure") == []
    order = [n for n in recorder.names() if n.startswith(("task_", "before_", "after_"))]
    assert order.index("before_task_publish") < order.index("after_task_publish")
    assert order[order.index("task_received") :][:4] == [
        "task_received",
        "task_prerun",
        "task_postrun",
        "task_success",
    ]
    assert order.index("before_task_publish") < order.index("task_received")


def test_task_failure_arrives_with_the_exception(recorder: Recorder, tmp_path: Path) -> None:
    """A raising task sends postrun (state FAILURE) and task_failure with the exception."""
    app = App("sigs-fail", environ={})

    @app.task(name="sigs.boom")
    def boom() -> None:
        raise ValueError("kaput")

    with start_worker(app, data_dir=tmp_path) as worker:
        result = boom.delay()
        with pytest.raises(ValueError, match="kaput"):
            result.get(timeout=TIMEOUT)
        worker.join(TIMEOUT, reraise=False)
    ((sender, failure),) = recorder.of("task_failure")
    assert sender is boom
    assert failure["task_id"] == result.id
    assert isinstance(failure["exception"], ValueError)
    ((_, postrun),) = recorder.of("task_postrun")
    assert postrun["state"] == "FAILURE"
    assert recorder.of("task_success") == []


def test_worker_lifecycle_signals_arrive_in_order(recorder: Recorder, tmp_path: Path) -> None:
    """Start: celeryd_init, worker_init, celeryd_after_setup, worker_ready; stop: the two others."""
    app = App("sigs-life", environ={})
    with start_worker(app, data_dir=tmp_path, hostname="life@test", concurrency=3) as worker:
        node = worker.node
        started = recorder.names()
    assert started == ["celeryd_init", "worker_init", "celeryd_after_setup", "worker_ready"]
    ((sender, init),) = recorder.of("celeryd_init")
    assert (sender, init["instance"]) == ("life@test", node)
    assert init["options"]["concurrency"] == 3
    assert init["conf"]["broker_url"] == app.conf.broker_url
    ((sender, setup),) = recorder.of("celeryd_after_setup")
    assert (sender, setup["instance"]) == ("life@test", node)
    assert [sender for sender, _ in recorder.of("worker_init")] == [node]
    assert [sender for sender, _ in recorder.of("worker_ready")] == [node]
    assert recorder.names()[4:] == ["worker_shutting_down", "worker_shutdown"]
    ((sender, down),) = recorder.of("worker_shutting_down")
    assert sender == "life@test"
    assert (down["how"], down["exitcode"]) == ("warm", 0)
    assert [sender for sender, _ in recorder.of("worker_shutdown")] == [node]
