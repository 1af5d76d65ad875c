"""Composing a publish: one pure function behind apply_async and send_task, no sockets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from celeriac import App, signals
from celeriac._clock import FakeClock
from celeriac._compose import compose
from celeriac._protocol import TaskMessage
from celeriac._request import Request
from celeriac.exceptions import ImproperlyConfigured

NOW = 1_000_000.0


def make_app() -> App:
    app = App("compose", environ={}, clock=FakeClock(NOW))
    app.conf.task_time_limit = 60

    @app.task(name="add", queue="math", soft_time_limit=5)
    def add(x: int, y: int) -> int:
        return x + y

    return app


class StubClient:
    """Records publishes instead of sending them."""

    def __init__(self) -> None:
        self.declared_queues: set[str] = {"celery", "math"}
        self.published: list[TaskMessage] = []
        self.declared: list[Any] = []

    def publish(self, message: TaskMessage) -> None:
        self.published.append(message)

    def declare(self, exchanges: Any, queues: Any) -> None:
        self.declared.append((exchanges, queues))
        self.declared_queues.update(q["name"] for q in queues)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> tuple[App, StubClient]:
    app = make_app()
    client = StubClient()
    monkeypatch.setattr(app, "_client", lambda: client)
    return app, client


def test_times_resolve_to_epoch_seconds() -> None:
    """countdown and a numeric expires count from now; datetimes are absolute (naive: UTC)."""
    app = make_app()
    msg = compose(app.conf, "t", (), {}, {"countdown": 5, "expires": 60}, NOW)
    assert (msg.eta, msg.expires) == (NOW + 5, NOW + 60)
    when = dt.datetime(2030, 1, 1, 12, 0)
    msg = compose(app.conf, "t", (), {}, {"eta": when, "expires": when}, NOW)
    assert msg.eta == msg.expires == when.replace(tzinfo=dt.UTC).timestamp()


def test_route_limits_and_result_policy_come_from_call_task_and_settings() -> None:
    """Call options win over the task's, which win over settings; the limits are the effective."""
    app = make_app()
    task = app.tasks["add"]
    msg = compose(app.conf, task.name, (1, 2), {}, {}, NOW, task=task)
    assert (msg.queue, msg.timelimit, msg.reply) == ("math", (5, 60), True)
    options: Any = {"queue": "other", "time_limit": 9, "ignore_result": True, "priority": 3}
    msg = compose(app.conf, task.name, (1, 2), {}, options, NOW, task=task)
    assert (msg.queue, msg.timelimit, msg.reply, msg.ignore_result) == (
        "other",
        (5, 9),
        False,
        True,
    )
    assert msg.priority == 3


def test_ids_body_and_parent() -> None:
    """The body is [args, kwargs, embed]; a parent request gives the parent and root ids."""
    app = make_app()
    parent = Request(id="p", task="x", root_id="r")
    msg = compose(app.conf, "t", [1], {"k": 2}, {"task_id": "me"}, NOW, parent=parent)
    assert (msg.id, msg.parent_id, msg.root_id) == ("me", "p", "r")
    assert (msg.content_type, msg.body) == ("application/json", b'[[1],{"k":2},{}]')
    orphan = compose(app.conf, "t", None, None, {"task_id": "o"}, NOW)
    assert (orphan.parent_id, orphan.root_id) == (None, "o")


def test_apply_async_and_send_task_publish_the_same_message(stub: tuple[App, StubClient]) -> None:
    """The two doors take one options type and compose the same message."""
    app, client = stub
    add = app.tasks["add"]
    add.apply_async((1, 2), task_id="a", countdown=1, headers={"h": 1})
    app.send_task(add.name, (1, 2), task_id="a", countdown=1, headers={"h": 1})
    first, second = client.published
    assert first == second
    assert first.eta == NOW + 1


def test_an_unknown_option_is_a_type_error_with_a_hint(stub: tuple[App, StubClient]) -> None:
    """A misspelt option is refused instead of silently ignored."""
    app, client = stub
    with pytest.raises(TypeError, match="did you mean 'queue'"):
        app.send_task("t", qeue="x")  # type: ignore[call-arg]
    assert client.published == []


def test_a_new_queue_is_declared_before_the_publish(stub: tuple[App, StubClient]) -> None:
    """A queue met for the first time is declared to the hub first."""
    app, client = stub
    app.send_task("t", queue="fresh")
    assert [q["name"] for _, queues in client.declared for q in queues] == ["fresh"]
    assert client.published[0].queue == "fresh"


def test_before_task_publish_may_edit_the_headers(stub: tuple[App, StubClient]) -> None:
    """A receiver's edit of ``headers`` is what gets published; a broken edit is an error here."""
    app, client = stub

    def edit(sender: str, headers: dict[str, Any], **_: Any) -> None:
        headers["priority"] = 7

    signals.before_task_publish.connect(edit)
    try:
        app.send_task("t", task_id="a")
    finally:
        signals.before_task_publish.disconnect(edit)
    assert client.published[0].priority == 7

    def breaks(sender: str, headers: dict[str, Any], **_: Any) -> None:
        headers["priority"] = "high"

    signals.before_task_publish.connect(breaks)
    try:
        with pytest.raises(ImproperlyConfigured, match="priority"):
            app.send_task("t")
    finally:
        signals.before_task_publish.disconnect(breaks)


def test_a_remembered_route_follows_the_settings_it_depends_on() -> None:
    """Routes are remembered per task options and settings (issue 18): a changed setting, a
    call option or task_routes is never answered from memory."""
    app = make_app()

    def queue(name: str = "noop", **options: Any) -> str:
        return compose(app.conf, name, (), None, options, NOW).queue

    assert queue() == queue() == "celery"
    app.conf.task_default_queue = "other"
    assert queue() == "other"
    assert queue(queue="direct") == "direct"
    app.conf.task_routes = {"noop": {"queue": "routed"}}
    assert queue() == "routed"
    app.conf.task_routes = None
    assert queue() == "other"
    add = app.tasks["add"]  # its own queue option: "math", made when first met
    assert compose(app.conf, "add", (1, 2), None, {}, NOW, task=add).queue == "math"
    app.conf.task_create_missing_queues = False
    with pytest.raises(ImproperlyConfigured, match="'math' is not in task_queues"):
        compose(app.conf, "add", (1, 2), None, {}, NOW, task=add)


def test_a_plain_call_and_one_naming_every_option_unset_compose_the_same_message() -> None:
    # The plain call (task_id, serializer, compression, ignore_result at most) skips the
    # other options' look-ups: the message must be the one those options left unset make.
    app = make_app()
    task = app.tasks["add"]
    parent = Request(id="p1", task="parent", root_id="r0")
    unset: dict[str, Any] = dict.fromkeys(
        (
            "countdown",
            "eta",
            "expires",
            "queue",
            "exchange",
            "routing_key",
            "headers",
            "priority",
            "time_limit",
            "soft_time_limit",
            "link",
            "link_error",
            "chain",
            "group_id",
            "root_id",
            "parent_id",
            "chord_id",
            "chord_size",
        )
    )
    for parent_of in (None, parent):
        for ignore in (None, True, False):
            plain = compose(
                app.conf, "add", (1, 2), {}, {"task_id": "t1", "ignore_result": ignore}, NOW,
                task=task, parent=parent_of,
            )  # fmt: skip
            full = compose(
                app.conf, "add", (1, 2), {}, {"task_id": "t1", "ignore_result": ignore, **unset},
                NOW, task=task, parent=parent_of,
            )  # fmt: skip
            assert plain == full
            assert plain.timelimit == (5, 60)
            assert plain.root_id == ("r0" if parent_of else "t1")
            assert plain.parent_id == ("p1" if parent_of else None)
