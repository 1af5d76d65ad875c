"""The executor calls a task's hooks only where the task has its own (the base class's do
nothing and are skipped, actors/invocation.py): a class's, a ``base=``'s, or one set on the
instance after registration, each in Celery's order."""

from __future__ import annotations

from typing import Any

from celeriac import App, Task
from celeriac._serialization import dumps
from celeriac.actors.execution import TaskExecutor
from celeriac.actors.invocation import overrides
from celeriac.transport import protocol as p


def _run(app: App, name: str) -> str:
    ct, body = dumps([[2], {}, {}], "json")
    executor = TaskExecutor(
        app, hostname="w@h", accept=frozenset({"application/json"}), result_serializer="json"
    )
    message = p.TaskMessage("id-1", name, body, ct, queue="q")
    return executor.execute(p.Delivery(message, "q", tag="t-1")).state


def test_hooks_of_a_base_class_run_in_order() -> None:
    app = App("hooks", broker="tcp://127.0.0.1:1")
    calls: list[str] = []

    class Hooked(app.Task):  # type: ignore[misc,name-defined]
        abstract = True

        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append("before_start")

        def on_success(self, retval: Any, *rest: Any) -> None:
            calls.append(f"on_success {retval}")

        def after_return(self, status: str, retval: Any, *rest: Any) -> None:
            calls.append(f"after_return {status}")

    @app.task(name="hooks.double", base=Hooked)
    def double(x: int) -> int:
        calls.append("body")
        return 2 * x

    assert _run(app, "hooks.double") == "SUCCESS"
    assert calls == ["before_start", "body", "on_success 4", "after_return SUCCESS"]


def test_a_hook_set_on_the_instance_runs_and_a_plain_task_has_none() -> None:
    app = App("hooks2", broker="tcp://127.0.0.1:1")
    calls: list[str] = []

    @app.task(name="hooks.plain")
    def plain(x: int) -> int:
        return x

    task: Task[Any, Any] = app.tasks["hooks.plain"]
    assert not any(overrides(task, h) for h in ("before_start", "on_success", "after_return"))
    task.after_return = lambda status, *rest: calls.append(status)  # type: ignore[method-assign]
    assert overrides(task, "after_return")
    assert not overrides(task, "on_success")
    assert _run(app, "hooks.plain") == "SUCCESS"
    assert calls == ["SUCCESS"]
