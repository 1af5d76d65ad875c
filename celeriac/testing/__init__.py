"""A test kit for users' tests: a real hub and worker in this process, and ``join()``.

It runs the real path (encode, route, store in SQLite, decode) over loopback ZeroMQ, not an
eager shortcut, so serialization and routing mistakes show up in tests, not in production::

    from celeriac.testing import start_worker

    def test_add(tmp_path):
        app = App("t")
        with start_worker(app, data_dir=tmp_path) as worker:
            assert add.delay(2, 2).get(timeout=10) == 4
            worker.join()          # queues drained; re-raises the first task failure

With pytest, the ``celeriac_app`` and ``celeriac_worker`` fixtures do the same (Celery's
``celery_app``/``celery_worker`` under our name); override ``celeriac_config`` to set settings.
While a hub or worker of the kit runs, their log lines go through stdlib ``logging``, so
pytest's log capture shows them with a failing test and ``caplog`` sees them.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import signals
from .._app import App
from .._clock import FakeClock
from ..exceptions import TimeoutError
from ._logs import logs_through_logging

if TYPE_CHECKING:
    from celeriac.runtime.worker import WorkerNode
    from celeriac.transport.hubserver import HubServer

__all__ = ["FakeClock", "TestWorker", "start_hub", "start_worker"]


class TestWorker:
    """A running in-process hub and worker node (made by :func:`start_worker`)."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: App, hub: HubServer, node: WorkerNode) -> None:
        self.app = app
        self.hub = hub
        self.node = node
        self.failures: list[BaseException] = []
        self._lock = threading.Lock()

    def _on_failure(
        self, sender: Any = None, exception: BaseException | None = None, **_: Any
    ) -> None:
        if exception is not None:
            with self._lock:
                self.failures.append(exception)

    def join(self, timeout: float = 10.0, *, reraise: bool = True) -> None:
        """Wait until every published task has finished (delayed ones too).

        Re-raises the first task failure seen since the worker started (``reraise=False`` to
        only wait). Raises :class:`celeriac.exceptions.TimeoutError` if work is still pending.
        """
        self.app.flush(timeout)
        deadline = time.monotonic() + timeout
        while True:
            stats = self.hub.statistics()
            if stats["messages"] == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stats['messages']} message(s) still pending after {timeout}s")
            time.sleep(0.005)
        if reraise:
            with self._lock:
                failure = self.failures[0] if self.failures else None
                self.failures.clear()
            if failure is not None:
                raise failure

    def statistics(self) -> dict[str, Any]:
        """The hub's counters (published, delivered, acked, redelivered...), read safely."""
        return self.hub.statistics()


@contextlib.contextmanager
def start_hub(app: App, data_dir: Path | str | None = None) -> Iterator[HubServer]:
    """Run a hub on a free loopback port and point ``app`` at it (for several workers)."""
    from celeriac.transport.hubserver import HubServer  # noqa: PLC0415 - the core stays socket-free

    with contextlib.ExitStack() as stack:
        stack.enter_context(logs_through_logging())
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="celeriac-test-"))
        # The app's own hub settings, on a free loopback port.
        hub = HubServer.from_settings(app.conf, bind="tcp://127.0.0.1:*", data_dir=data_dir)
        hub.start()
        stack.callback(hub.stop)
        app.conf.broker_url = hub.endpoint
        yield hub


@contextlib.contextmanager
def start_worker(
    app: App,
    *,
    concurrency: int = 2,
    pool: str = "threads",
    queues: list[str] | None = None,
    exclude_queues: list[str] | None = None,
    data_dir: Path | str | None = None,
    hub: HubServer | None = None,
    hostname: str = "test-worker@localhost",
) -> Iterator[TestWorker]:
    """Run a worker node for ``app`` in this process, with its own hub unless ``hub`` is given.

    The app's ``broker_url`` is pointed at the hub, so configure the app before calling this
    and send only inside the block.
    """
    from celeriac.runtime.worker import WorkerNode  # noqa: PLC0415 - the core stays socket-free

    with contextlib.ExitStack() as stack:
        stack.enter_context(logs_through_logging())
        if hub is None:
            hub = stack.enter_context(start_hub(app, data_dir))
        node = WorkerNode(
            app,
            queues=queues,
            exclude_queues=exclude_queues,
            concurrency=concurrency,
            pool=pool,
            hostname=hostname,
        )
        worker = TestWorker(app, hub, node)
        signals.task_failure.connect(worker._on_failure)
        stack.callback(signals.task_failure.disconnect, worker._on_failure)
        node.start()
        stack.callback(node.stop)
        stack.callback(app.close)
        if not node.ready.wait(10):
            raise TimeoutError("the test worker did not become ready within 10s")
        yield worker
