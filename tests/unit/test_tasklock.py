"""The task option lock=: declaration checks and the lock name from the call's arguments."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App, Task
from celeriac.actors.tasklock import lock_name, refuse_lock_on_loop
from celeriac.exceptions import ImproperlyConfigured


def test_the_name_takes_the_calls_arguments_by_name() -> None:
    """Positional and keyword arguments, defaults and bound tasks all fill the fields."""
    app = App("t", environ={})

    @app.task(lock="feed:{url}:{depth}")
    def plain(url: str, depth: int = 1) -> None: ...

    @app.task(bind=True, lock="feed:{url}")
    def bound(self: Task[..., None], url: str) -> None: ...

    assert lock_name(plain, plain.lock, ("http://a",), {}) == "feed:http://a:1"
    assert lock_name(plain, plain.lock, (), {"url": "u", "depth": 3}) == "feed:u:3"
    assert lock_name(bound, bound.lock, ("http://b",), {}) == "feed:http://b"
    with pytest.raises(ImproperlyConfigured, match="not an argument"):
        lock_name(plain, "feed:{nope}", ("u",), {})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lock": 3}, "must be a string"),
        ({"lock": "x", "lock_busy": "wait"}, "lock_busy must be one of"),
        ({"lock": "x", "lock_expire": 0}, "lock_expire must be positive"),
    ],
)
def test_bad_lock_options_are_refused_at_declaration(options: dict[str, Any], message: str) -> None:
    """A wrong lock option fails when the task is declared, not when it runs."""
    app = App("t", environ={})
    with pytest.raises(ImproperlyConfigured, match=message):
        app.task(**options)(lambda: None)


def test_the_asyncio_pool_refuses_the_option() -> None:
    """On an event loop the option is refused rather than ignored."""
    app = App("t", environ={})

    @app.task(lock="x")
    async def job() -> None: ...

    with pytest.raises(ImproperlyConfigured, match="asyncio pool"):
        refuse_lock_on_loop(job)
