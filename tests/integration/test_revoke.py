"""Revoke with real processes: queued and delayed tasks dropped, durable across a hub restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from celeriac import App, group, signature, states
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
