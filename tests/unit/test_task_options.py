"""Task options are checked before anything is recorded: time limit order, shared_task."""

from __future__ import annotations

import pytest

from celeriac import App, shared_task
from celeriac._compose import message_time_limits
from celeriac.exceptions import ImproperlyConfigured

REFUSED = "soft_time_limit must be less than or equal to time_limit"


def test_soft_limit_above_hard_limit_is_refused_at_decoration() -> None:
    """@app.task(soft_time_limit=2, time_limit=1) raises (Celery refuses it); nothing registered."""
    app = App("tlorder", environ={})
    with pytest.raises(ImproperlyConfigured, match=REFUSED):

        @app.task(name="tlorder.bad", soft_time_limit=2, time_limit=1)
        def bad() -> None: ...

    assert "tlorder.bad" not in app.tasks


def test_equal_limits_and_a_single_limit_are_accepted() -> None:
    """soft == hard, or only one of them, is fine."""
    app = App("tlok", environ={})

    @app.task(name="tlok.equal", soft_time_limit=1, time_limit=1)
    def equal() -> None: ...

    @app.task(name="tlok.soft", soft_time_limit=5)
    def soft_only() -> None: ...

    assert {"tlok.equal", "tlok.soft"} <= set(app.tasks)


def test_class_task_with_soft_limit_above_hard_limit_is_refused() -> None:
    """The same rule holds for class attributes of a class-based task."""
    app = App("tlcls", environ={})
    with pytest.raises(ImproperlyConfigured, match=REFUSED):

        class Slow(app.Task):  # type: ignore[name-defined,misc]
            name = "tlcls.slow"
            soft_time_limit = 10
            time_limit = 5

            def run(self) -> None: ...

    assert "tlcls.slow" not in app.tasks


def test_per_call_limits_are_checked_after_precedence() -> None:
    """A call's soft limit above the effective hard limit (call, task, setting) is refused."""
    app = App("tlcall", environ={}, task_time_limit=30)

    @app.task(name="tlcall.opt", time_limit=10)
    def opt() -> None: ...

    with pytest.raises(ImproperlyConfigured, match=REFUSED):
        message_time_limits(app.conf, opt, 2, 1)
    with pytest.raises(ImproperlyConfigured, match=REFUSED):
        message_time_limits(app.conf, opt, 20, None)  # the task's time_limit=10 is the hard limit
    assert message_time_limits(app.conf, opt, 5, None) == (5, 10)


def test_refused_shared_task_is_not_recorded_so_later_apps_finalize() -> None:
    """A shared_task refused for a bad option leaves no declaration behind for later Apps."""
    App("shared-before", environ={})
    with pytest.raises(ImproperlyConfigured, match="unknown task option"):

        @shared_task(no_such_option=True)
        def unknown_option() -> None: ...

    with pytest.raises(ImproperlyConfigured, match=REFUSED):

        @shared_task(soft_time_limit=2, time_limit=1)
        def bad_limits() -> None: ...

    later = App("shared-after", environ={})
    later.finalize()  # raised ImproperlyConfigured for every later App before the fix
    assert not any(name.endswith(("unknown_option", "bad_limits")) for name in later.tasks)
