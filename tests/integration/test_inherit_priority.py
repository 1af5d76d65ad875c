"""task_inherit_parent_priority: tasks sent by a task, its chain and callbacks keep its priority."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App, Task, chain
from celeriac.testing import TestWorker

from .conftest import wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


@pytest.fixture
def celeriac_config() -> dict[str, Any]:
    """Priorities on every queue, inherited by children."""
    return {"task_queue_max_priority": 9, "task_inherit_parent_priority": True}


def test_children_inherit_the_priority_unless_they_give_one(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A task sent from a task gets its priority; an explicit priority wins; the next chain
    step and a callback inherit it too; a top-level call has none."""
    seen: dict[str, Any] = {}

    @celeriac_app.task(bind=True, name="ip.leaf")
    def leaf(self: Task[Any, Any], tag: str, *_: Any) -> str:
        seen[tag] = self.request.delivery_info.get("priority")
        return tag

    @celeriac_app.task(bind=True, name="ip.parent")
    def parent(self: Task[Any, Any]) -> list[str]:
        seen["parent"] = self.request.delivery_info.get("priority")
        inherited = leaf.delay("child")
        explicit = leaf.apply_async(("explicit",), priority=2)
        return [inherited.id, explicit.id]

    ids = parent.apply_async(priority=7).get(timeout=TIMEOUT)
    for task_id in ids:
        celeriac_app.AsyncResult(task_id).get(timeout=TIMEOUT)
    assert seen == {"parent": 7, "child": 7, "explicit": 2}

    flow = chain(leaf.si("first"), leaf.si("second")).apply_async(priority=5)
    flow.get(timeout=TIMEOUT)
    callback = leaf.si("linked")
    leaf.apply_async(("linking",), priority=4, link=callback).get(timeout=TIMEOUT)
    leaf.delay("top").get(timeout=TIMEOUT)
    assert (seen["first"], seen["second"]) == (5, 5)
    assert seen["linking"] == 4
    wait_until(lambda: "linked" in seen, TIMEOUT, "the callback")
    assert seen["linked"] == 4
    assert seen["top"] is None


def test_without_the_setting_children_get_no_priority(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """Celery's default: a child sent from a prioritised task has no priority of its own."""
    celeriac_app.conf.task_inherit_parent_priority = False
    seen: dict[str, Any] = {}

    @celeriac_app.task(bind=True, name="ip.leaf2")
    def leaf(self: Task[Any, Any], tag: str) -> str:
        seen[tag] = self.request.delivery_info.get("priority")
        return tag

    @celeriac_app.task(name="ip.parent2")
    def parent() -> str:
        return leaf.delay("child").id

    child = parent.apply_async(priority=7).get(timeout=TIMEOUT)
    celeriac_app.AsyncResult(child).get(timeout=TIMEOUT)
    assert seen == {"child": None}
