"""Typical user code (DESIGN.md section 1), type-checked in CI with ``mypy tests/typing``.

Lines marked ``type: ignore[...]`` must stay errors: mypy's ``warn_unused_ignores`` (strict)
fails the run if one of them ever type-checks, so the typed task API is pinned both ways.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celeriac import App, AsyncResult, Celery, Task
from celeriac.schedules import crontab, schedstate, schedule

app = App("tasks", broker="tcp://127.0.0.1:5555")
migrated: App = Celery("legacy")
failover = App("tasks", broker=["tcp://hub-a:5555", "tcp://hub-b:5555"])  # several hubs


@app.task
def add(x: int, y: int) -> int:
    """Add."""
    return x + y


@app.task(bind=True, ignore_result=True, queue="feed_tasks")
def fetch(self: Task[..., None], url: str) -> None:
    """A bound task."""
    self.log.info("fetching", url=url, task_id=self.request.id)


@app.task(rate_limit="10/s", max_concurrency=2)
def limited(path: str) -> int:
    """A rate-limited task capped at 2 at once per worker."""
    return len(path)


class Thumbnail(app.Task):  # type: ignore[misc,name-defined]
    """A class-based task with per-type limits as class attributes."""

    name = "images.thumbnail"
    rate_limit = "100/m"
    max_concurrency = 1

    def run(self, path: str) -> str:
        """Make a thumbnail."""
        return path


def client_side() -> None:
    """The calls a client makes, with their types."""
    r: AsyncResult[int] = add.delay(2, 2)
    total: int = r.get(timeout=10)
    local: int = add(1, 2)
    add.apply_async((2, 2), countdown=5, queue="math", expires=60, serializer="msgpack")
    fetch.delay("https://example.com")
    limited.delay("a/b")
    limited.delay(3)  # type: ignore[arg-type]
    print(total, local)
    add.delay("x", 2)  # type: ignore[arg-type]
    add.delay(1)  # type: ignore[call-arg]
    fetch.delay(42)  # type: ignore[arg-type]
    wrong: str = add.delay(1, 2).get()  # type: ignore[assignment]
    print(wrong)


def periodic_tasks() -> None:
    """DESIGN.md's beat_schedule and the pure next_run, with their types."""
    monday = crontab(hour=7, minute=30, day_of_week=1)
    app.conf.beat_schedule = {"monday": {"task": "tasks.add", "schedule": monday, "args": (16, 16)}}
    when: dt.datetime = monday.next_run(after=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    state: schedstate = schedule(30).is_due(when)
    print(when, state.is_due, state.next)
    monday.next_run("tomorrow")  # type: ignore[arg-type]


@app.task(bind=True)
def resize_all(self: Task[..., int], images: list[str]) -> int:
    """Celery's progress pattern (issue 10): update_state with a custom state and meta."""
    for done, _image in enumerate(images, start=1):
        self.update_state(state="PROGRESS", meta={"current": done, "total": len(images)})
    self.update_state(state=42)  # type: ignore[arg-type]
    return len(images)


def progress_side() -> None:
    """What a client reads of a running task, with its types."""
    r = resize_all.delay(["a.png"])
    state: str = r.state
    name: str | None = r.name
    args: tuple[object, ...] | None = r.args
    done: dt.datetime | None = r.date_done
    print(state, r.info, name, args, done, r.worker, r.queue, r.retries, r.kwargs)
    count: int = r.name  # type: ignore[assignment]
    print(count)


def remote_control() -> None:
    """app.control, inspect() and an events State, with their types."""
    replies: dict[str, Any] | None = app.control.inspect(timeout=2).active()
    count: int = app.control.purge(["celery"])
    state = app.events.State()
    state.event({"type": "task-received", "uuid": "x"})
    by_state: dict[str, int] = state.tasks_by_state()
    print(replies, count, by_state)
    app.control.purge(1)  # type: ignore[arg-type]


@app.actor
class Counter:
    """A keyed actor (DESIGN.md section 1); proxies are typed by the plugin celeriac.mypy."""

    def __init__(self, key: str) -> None:
        self.n = 0

    def incr(self, by: int = 1) -> int:
        """Add ``by``."""
        self.n += by
        return self.n

    def _reset(self) -> None:
        self.n = 0


def keyed_actors_and_locks() -> None:
    """A proxy keeps the class's signatures; private names are unreachable; a lock."""
    counter = app.proxy(Counter, key="user-42")
    value: int = counter.incr(5).get(timeout=10)
    counter.incr.tell(1)
    counter.incr("x")  # type: ignore[arg-type]
    counter.incr.tell("x")  # type: ignore[arg-type]
    wrong: str = counter.incr().get()  # type: ignore[assignment]
    counter._reset()  # type: ignore[misc]
    counter.decr()  # type: ignore[misc]
    with app.lock("feed:https://example.com", expire=600) as acquired:
        got: bool = acquired
    lock = app.lock("report", expire=60)
    if lock.acquire(blocking=True, timeout=5.0):
        lock.release()
    print(value, wrong, got, lock.locked())
