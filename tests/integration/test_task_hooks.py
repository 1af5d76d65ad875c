"""Celery's task hooks, base= classes, argument checks and AsyncResult helpers, on a real worker."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from celeriac import App, AsyncResult, Task
from celeriac.testing import TestWorker

from .conftest import wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 20.0


def _hooked_base(app: App, calls: list[tuple[Any, ...]]) -> type[Task[Any, Any]]:
    """A base task class recording each hook call."""

    class Hooked(app.Task):  # type: ignore[misc,name-defined]
        abstract = True

        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append(("before_start", tuple(args)))

        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append(("on_success", retval))

        def on_failure(self, exc: BaseException, task_id: str, *rest: Any) -> None:
            calls.append(("on_failure", type(exc).__name__))

        def after_return(self, status: str, retval: Any, *rest: Any) -> None:
            calls.append(("after_return", status))

    return Hooked


def test_hooks_fire_once_in_celerys_order(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """before_start, on_success|on_failure, after_return: once each, in that order."""
    calls: list[tuple[Any, ...]] = []
    base = _hooked_base(celeriac_app, calls)

    @celeriac_app.task(base=base)
    def double(x: int) -> int:
        return 2 * x

    @celeriac_app.task(base=base)
    def broken() -> None:
        raise KeyError("nope")

    assert double.delay(21).get(timeout=TIMEOUT) == 42
    assert calls == [("before_start", (21,)), ("on_success", 42), ("after_return", "SUCCESS")]
    calls.clear()
    with pytest.raises(KeyError):
        broken.delay().get(timeout=TIMEOUT)
    assert calls == [("before_start", ()), ("on_failure", "KeyError"), ("after_return", "FAILURE")]


def test_bad_arguments_fail_in_the_caller(celeriac_app: App) -> None:
    """typing=True (Celery's default): add.delay(5) raises TypeError before any publish."""

    @celeriac_app.task
    def add(x: int, y: int) -> int:
        return x + y

    @celeriac_app.task(bind=True)
    def bound(self: Task[..., int], x: int) -> int:
        return x

    @celeriac_app.task(typing=False)
    def unchecked(x: int) -> int:
        return x

    with pytest.raises(TypeError, match=r"add\(\) missing a required argument: 'y'"):
        add.delay(5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        add.apply_async((1, 2), {"z": 3})
    with pytest.raises(TypeError, match="too many positional arguments"):
        bound.delay(1, 2)  # type: ignore[call-arg]
    assert celeriac_app._client_obj is None  # nothing was sent: no connection was even made
    assert unchecked.name.endswith("unchecked")


def test_async_result_helpers(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """wait, info, maybe_throw, exists, as_tuple; AsyncResult(id) finds the current app."""

    @celeriac_app.task
    def fail() -> None:
        raise ValueError("bad")

    @celeriac_app.task
    def ok() -> str:
        return "fine"

    good = ok.delay()
    assert good.wait(timeout=TIMEOUT) == "fine"
    assert good.info == "fine"
    assert good.exists()
    assert good.as_tuple() == ((good.id, None), None)
    celeriac_app.set_current()
    again: AsyncResult[Any] = AsyncResult(good.id)
    assert again.app is celeriac_app
    bad = fail.delay()
    assert isinstance(bad.get(timeout=TIMEOUT, propagate=False), ValueError)
    with pytest.raises(ValueError, match="bad"):
        bad.maybe_throw()
    assert bad.name is None  # known after the end only with result_extended


def test_task_track_started_and_throws(
    celeriac_app: App, celeriac_worker: TestWorker, caplog: pytest.LogCaptureFixture
) -> None:
    """track_started=True shows STARTED while running; a `throws` error is logged at INFO."""
    release = threading.Event()

    @celeriac_app.task(track_started=True)
    def slow() -> str:
        release.wait(TIMEOUT)
        return "done"

    @celeriac_app.task(throws=(KeyError,))
    def expected() -> None:
        raise KeyError("known")

    result = slow.delay()
    wait_until(lambda: result.state == "STARTED", TIMEOUT, "the task to be STARTED")
    release.set()
    assert result.get(timeout=TIMEOUT) == "done"
    with caplog.at_level(logging.INFO), pytest.raises(KeyError):
        expected.delay().get(timeout=TIMEOUT)
    failed = [r for r in caplog.records if "task_failed" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.INFO]


def test_task_expires_option_is_the_default_of_each_call(celeriac_app: App) -> None:
    """@app.task(expires=60) gives each call expires=60 unless the call names its own."""
    from celeriac._task_compat import prepare_send  # noqa: PLC0415

    @celeriac_app.task(expires=60)
    def short() -> None: ...

    options: dict[str, Any] = {}
    prepare_send(short, (), {}, options)  # type: ignore[arg-type]
    assert options == {"expires": 60}
    options = {"expires": 5}
    prepare_send(short, (), {}, options)  # type: ignore[arg-type]
    assert options == {"expires": 5}
