"""Unknown task names and refused content types are reported, and the worker keeps working."""

from __future__ import annotations

import pytest

from celeriac import App, states
from celeriac.exceptions import ContentDisallowed, NotRegistered

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, complete_lines, count_events, wait_until

pytestmark = pytest.mark.integration


def _signal_lines(module: TaskModule) -> list[list[str]]:
    return [line.split() for line in complete_lines(module.signal_log)]


def test_unknown_task_name(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, client: App
) -> None:
    """An unknown task name is a stored FAILURE (NotRegistered), signalled and logged."""
    worker = procs.worker(broker_url, cwd=tasks_module.dir)
    result = client.send_task("no.such.task", [1])
    with pytest.raises(NotRegistered, match=r"no\.such\.task"):
        result.get(timeout=RESULT_TIMEOUT)
    assert result.state == states.FAILURE
    assert client.send_task("itasks.add", [4, 4]).get(timeout=RESULT_TIMEOUT) == 8
    assert ["task_unknown", "no.such.task", result.id] in _signal_lines(tasks_module)
    assert count_events(worker.log, "task_unknown") == 1


def test_unaccepted_content_type(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, client: App
) -> None:
    """A pickled task to a json-only worker is REJECTED (ContentDisallowed), signalled, logged."""
    worker = procs.worker(broker_url, cwd=tasks_module.dir)
    result = client.send_task("itasks.add", [1, 2], serializer="pickle")
    with pytest.raises(ContentDisallowed):
        result.get(timeout=RESULT_TIMEOUT)
    assert result.state == states.REJECTED
    assert client.send_task("itasks.add", [4, 4]).get(timeout=RESULT_TIMEOUT) == 8
    wait_until(
        lambda: ["task_rejected", result.id, "ContentDisallowed"] in _signal_lines(tasks_module),
        RESULT_TIMEOUT,
        "the task_rejected signal",
    )
    assert count_events(worker.log, "task_rejected") == 1
    assert not tasks_module.executions()  # the pickled body was never run
