"""A client whose hub is away holds a bounded number of unconfirmed publishes (issue 16)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from celeriac import App
from celeriac.exceptions import PublishError

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, wait_until

pytestmark = pytest.mark.integration


def _client(url: str, timeout: float) -> App:
    return App(
        "client",
        broker=url,
        environ={},
        broker_max_unconfirmed=5,
        broker_publish_timeout=timeout,
    )


def test_publishing_past_the_cap_blocks_then_raises_naming_the_settings(broker_url: str) -> None:
    """Nothing at the address: five publishes are held, the sixth blocks for
    broker_publish_timeout and raises PublishError that names the cap; it was not sent. The
    wait is a warning once it passed a second (before, debug: a burst meets the cap often)."""
    app = _client(broker_url, 1.5)
    try:
        held = [app.send_task("itasks.add", [i, i]) for i in range(5)]
        with (
            capture_logs() as logs,
            pytest.raises(PublishError, match="broker_max_unconfirmed=5") as refused,
        ):
            app.send_task("itasks.add", [9, 9])
        blocked = [
            (e["log_level"], e.get("waited")) for e in logs if e["event"] == "publish_blocked"
        ]
        assert blocked[0] == ("debug", None)
        assert [level for level, _ in blocked[1:]] == ["warning"]
        assert 1.0 <= blocked[1][1] < 1.5  # type: ignore[operator]
        assert "broker_publish_timeout=1.5s" in str(refused.value)
        assert "is the hub running" in str(refused.value)
        client = app._client()
        assert set(client._session.unconfirmed) == {r.id for r in held}
        client.close(timeout=0.1)  # they were never stored: said as publishes_lost
    finally:
        app.close()


def test_a_blocked_publish_goes_on_once_the_hub_confirms(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, tmp_path: Path
) -> None:
    """A publisher blocked by the cap is released by the hub's confirmations when the hub
    comes: every task, the blocked one included, then runs."""
    app = _client(broker_url, RESULT_TIMEOUT * 4)
    try:
        results = [app.send_task("itasks.add", [i, 1]) for i in range(5)]
        done = threading.Event()
        late: list[object] = []

        def publish_sixth() -> None:
            late.append(app.send_task("itasks.add", [100, 1]))
            done.set()

        publisher = threading.Thread(target=publish_sixth, daemon=True)
        publisher.start()
        assert not done.wait(0.5), "the sixth publish did not block at the cap"
        procs.hub(broker_url, tmp_path / "hub-data")
        wait_until(done.is_set, RESULT_TIMEOUT, "the blocked publish to go on")
        procs.worker(broker_url, cwd=tasks_module.dir)
        results += late  # type: ignore[arg-type]
        assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [1, 2, 3, 4, 5, 101]
    finally:
        app.close()
