"""Issue 10's remaining Celery names: app-bound canvas/results, Task flags, AsyncResult bits."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App, AsyncResult, GroupResult, Request, Signature
from celeriac.exceptions import ImproperlyConfigured, MaxRetriesExceededError
from celeriac.result import ResultSet


def test_app_signature_group_result_and_result_set_are_bound_to_the_app() -> None:
    """app.signature / app.GroupResult / app.ResultSet build the core objects on this app."""
    app = App("bound", environ={})
    sig = app.signature("tasks.add", (2, 2), countdown=1)
    assert isinstance(sig, Signature)
    assert (sig.task, sig.args, sig.options["countdown"], sig._app) == ("tasks.add", (2, 2), 1, app)
    members = [AsyncResult("a", app), AsyncResult("b", app)]
    group = app.GroupResult("g", members)
    assert isinstance(group, GroupResult)
    assert (group.id, group.results, group.app) == ("g", members, app)
    results = app.ResultSet(members)
    assert isinstance(results, ResultSet)
    assert results.app is app


def test_task_flags_are_celerys_and_false_is_refused() -> None:
    """acks_late and acks_on_failure_or_timeout are True; False is refused on a class, an option
    and the setting, with one message per flag; Task.MaxRetriesExceededError is the error."""
    app = App("flags", environ={})

    @app.task
    def plain() -> None: ...

    assert plain.acks_late is True
    assert plain.acks_on_failure_or_timeout is True
    assert plain.store_errors_even_if_ignored is None
    assert plain.MaxRetriesExceededError is MaxRetriesExceededError
    with pytest.raises(ImproperlyConfigured, match="acknowledged with state FAILURE"):

        @app.task(acks_on_failure_or_timeout=False)
        def early() -> None: ...

    with pytest.raises(ImproperlyConfigured, match=r"acks_late=False \(task_acks_late=False\)"):

        class Early(app.Task):  # type: ignore[misc,name-defined]
            acks_late = False

    with pytest.raises(ImproperlyConfigured, match=r"acks_late=False \(task_acks_late=False\)"):
        App("env", environ={"CELERIAC_TASK_ACKS_LATE": "false"}).conf.task_acks_late  # noqa: B018


def test_async_result_ignored_and_as_list() -> None:
    """ignored is Celery's flag (False unless sent with ignore_result); as_list walks parents."""
    app = App("asl", environ={})
    first, second = AsyncResult("one", app), AsyncResult("two", app)
    second.parent = first
    assert second.as_list() == ["two", "one"]
    assert first.ignored is False


def test_request_fields_default_to_what_is_true_here() -> None:
    """Celery's Request fields exist; the derived ones follow timelimit, id and group."""
    request = Request(id="i", task="t", group="g", timelimit=(1.0, 2.0))
    values: dict[str, Any] = {
        "soft_time_limit": 1.0,
        "time_limit": 2.0,
        "correlation_id": "i",
        "taskset": "g",
        "callbacks": None,
        "utc": True,
        "stamps": None,
    }
    assert {name: getattr(request, name) for name in values} == values
