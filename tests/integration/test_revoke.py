"""Revoke with real processes: queued and delayed tasks dropped, durable across a hub restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from celeriac import App, group, signals, signature, states
from celeriac.exceptions import TaskRevokedError
from celeriac.testing import TestWorker

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule

pytestmark = pytest.mark.integration


def test_revoked_tasks_never_run_even_after_a_hub_restart(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """Revoke a queued, a delayed and a not-yet-sent task; kill -9 the hub; a worker started
    after the restart runs only the others, and the revoked ids stay REVOKED."""
    data_dir = tmp_path / "hub-data"
    hub = procs.hub(broker_url, data_dir)
    queued = client.send_task("itasks.record")
    delayed = client.send_task("itasks.record", countdown=3600)
    kept = client.send_task("itasks.record")
    client.flush(RESULT_TIMEOUT)
    queued.revoke()
    delayed.revoke()
    client.control.revoke("sent-later")
    hub.kill9()

    procs.hub(broker_url, data_dir)
    later = client.send_task("itasks.record", task_id="sent-later")
    procs.worker(broker_url, cwd=tasks_module.dir, concurrency=2)
    assert isinstance(kept.get(timeout=RESULT_TIMEOUT), int)
    for result in (queued, delayed, later):
        with pytest.raises(TaskRevokedError):
            result.get(timeout=RESULT_TIMEOUT)
        assert result.state == states.REVOKED
    assert set(tasks_module.ended()) == {kept.id}


def test_group_result_revoke(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """GroupResult.revoke() revokes every member (here all delayed): each ends REVOKED."""

    @celeriac_app.task(name="rv.add")
    def add(x: int, y: int) -> int:
        return x + y

    result = group(add.s(i, i).set(countdown=3600) for i in range(3))()
    result.revoke()
    for member in result.results:
        with pytest.raises(TaskRevokedError):
            member.get(timeout=RESULT_TIMEOUT)
    assert signature("rv.add", (1, 1), app=celeriac_app).delay().get(timeout=RESULT_TIMEOUT) == 2


def test_task_revoked_is_sent_by_the_revoker_for_tasks_removed_at_the_hub(
    procs: Spawner, broker_url: str, tmp_path: Path, client: App
) -> None:
    """A queued and a delayed task removed at the hub (no worker ever sees them): the process
    that revoked them sends ``task_revoked`` (terminated and expired False) before revoke()
    returns; a task never sent gets none (nothing was removed), and each is reported once."""
    procs.hub(broker_url, tmp_path / "hub-data")
    queued = client.send_task("itasks.record")
    delayed = client.send_task("itasks.record", countdown=3600)
    client.flush(RESULT_TIMEOUT)
    seen: list[tuple[str, str, bool, bool, Any]] = []

    def on_revoked(sender: Any, request: Any, terminated: bool, expired: bool, **kw: Any) -> None:
        seen.append((request.id, request.task, terminated, expired, kw.get("signum")))

    signals.task_revoked.connect(on_revoked)
    try:
        client.control.revoke([queued.id, delayed.id, "never-sent"])
        client.control.revoke([queued.id])  # again: already removed, not reported twice
    finally:
        signals.task_revoked.disconnect(on_revoked)
    assert sorted(seen) == sorted(
        [
            (queued.id, "itasks.record", False, False, None),
            (delayed.id, "itasks.record", False, False, None),
        ]
    )
    assert queued.state == delayed.state == states.REVOKED
