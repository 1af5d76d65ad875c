"""app.control, inspect() and the CLI verbs against a stub connection: each method sends the
command and arguments Celery's does, answers are shaped as Celery's (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from celeriac import App, control_command, inspect_command
from celeriac._panel import COMMANDS
from celeriac._serialization import dumps
from celeriac.runtime.cli import cli
from celeriac.runtime.gather import Replies
from celeriac.transport import protocol as p


class StubClient:
    """Answers every control request from ``answers`` (by command) and records them."""

    def __init__(self, answers: dict[str, dict[str, Any]], missing: list[str]) -> None:
        self.answers = answers
        self.missing = missing
        self.requests: list[p.ControlRequest] = []
        self.revoked: list[str] = []

    def control(self, request: p.ControlRequest, timeout: float, limit: int | None) -> Replies:
        self.requests.append(request)
        return Replies(dict(self.answers.get(request.command, {})), list(self.missing), True)

    def revoke(self, ids: list[str], terminate: bool, signal: str) -> None:
        self.revoked += ids

    def state(self, task_id: str) -> str:
        return "REVOKED"

    def close(self) -> None:
        """Nothing to close."""


class StubApp(App):
    """An App whose connection is the stub."""

    stub: StubClient

    def _client(self) -> Any:
        return self.stub

    def close(self) -> None:
        """Nothing to close."""


def make_app(
    answers: dict[str, dict[str, Any]] | None = None, missing: list[str] | None = None
) -> StubApp:
    app = StubApp("stub", environ={})
    app.stub = StubClient(answers or {}, missing or [])
    return app


def last(app: StubApp) -> tuple[str, dict[str, Any], tuple[str, ...] | None]:
    request = app.stub.requests[-1]
    return request.command, dict(request.arguments), request.destination


def test_control_methods_send_celerys_commands() -> None:
    """Each app.control method sends its command with Celery's argument names."""
    app = make_app({"ping": {"w": {"ok": "pong"}}})
    control = app.control
    assert control.ping() == [{"w": {"ok": "pong"}}]
    calls = [
        (
            lambda: control.rate_limit("t", "1/s"),
            ("rate_limit", {"task_name": "t", "rate_limit": "1/s"}),
        ),
        (
            lambda: control.time_limit("t", 1, 2),
            ("time_limit", {"task_name": "t", "soft": 1, "hard": 2}),
        ),
        (lambda: control.shutdown(destination="w"), ("shutdown", {})),
        (lambda: control.pool_grow(2), ("pool_grow", {"n": 2})),
        (control.pool_shrink, ("pool_shrink", {"n": 1})),
        (lambda: control.autoscale(4, 2), ("autoscale", {"max": 4, "min": 2})),
        (lambda: control.add_consumer("q"), ("add_consumer", {"queue": "q"})),
        (lambda: control.cancel_consumer("q"), ("cancel_consumer", {"queue": "q"})),
        (control.enable_events, ("enable_events", {})),
        (control.disable_events, ("disable_events", {})),
        (control.heartbeat, ("heartbeat", {})),
    ]
    for call, (command, arguments) in calls:
        assert call() is None  # reply=False, as Celery's default
        assert last(app)[:2] == (command, arguments)
        assert app.stub.requests[-1].reply is False
    assert last(app)[2] is None
    control.shutdown(destination="w")
    assert last(app)[2] == ("w",)
    control.revoke(["a", "b"])
    assert app.stub.revoked == ["a", "b"]
    control.revoke([])
    assert app.stub.revoked == ["a", "b"]


def test_inspect_methods_and_missing_nodes() -> None:
    """inspect() methods send their verbs; None when nobody answered; missing listed."""
    app = make_app({"active": {"w": []}}, missing=["slow"])
    inspect = app.control.inspect(["w", "slow"], timeout=0.5)
    assert inspect.active() == {"w": []}
    assert inspect.missing == ["slow"]
    for name in ("ping", "clock", "reserved", "stats", "revoked", "active_queues", "report"):
        assert getattr(inspect, name)() is None
        assert last(app)[0] == name
    inspect.registered("rate_limit")
    assert last(app)[1] == {"taskinfoitems": ["rate_limit"]}
    inspect.query_task("a", ["b", "c"])
    assert last(app)[1] == {"ids": ["a", "b", "c"]}
    inspect.conf()
    assert last(app)[1] == {"with_defaults": True}
    inspect.anything_custom(n=1)
    assert last(app)[:2] == ("anything_custom", {"n": 1})
    with pytest.raises(AttributeError):
        inspect._private  # noqa: B018


def test_scheduled_decodes_arguments_and_eta() -> None:
    """The hub's scheduled entries come back with arguments decoded and an ISO ETA."""
    ct, body = dumps([[1, 2], {"z": 3}, {}], "json")
    entry = {"eta": 0.5, "priority": 0, "request": {"id": "x", "body": body, "content_type": ct}}
    bad = {"eta": None, "request": {"id": "y", "body": b"?", "content_type": "application/json"}}
    app = make_app({"scheduled": {"w": [entry, bad]}})
    [got, undecodable] = (app.control.inspect().scheduled() or {})["w"]
    assert got == {
        "eta": "1970-01-01T00:00:00.500000+00:00",
        "priority": 0,
        "request": {"id": "x", "args": [1, 2], "kwargs": {"z": 3}},
    }
    assert undecodable["request"]["args"] is None
    assert undecodable["eta"] is None
    assert make_app().control.inspect().scheduled() is None


def test_purge_and_hub_answers() -> None:
    """purge returns the count the hub removed; hub() asks hub_<what>."""
    app = make_app({"purge": {"hub": {"purged": 4}}, "hub_queues": {"hub": {"celery": {}}}})
    assert app.control.purge(["celery"]) == 4
    assert last(app)[1] == {"queues": ["celery"]}
    assert app.control.hub("queues") == {"celery": {}}
    assert app.control.discard_all() == 4
    assert last(app)[1] == {"queues": ["celery"]}
    assert app.control.broadcast("ping", reply=True) == []


def test_custom_commands_register() -> None:
    """@inspect_command / @control_command register by name with their CLI arguments."""

    @inspect_command(name="stub_info")
    def info(state: Any) -> Any:
        """Stub info."""
        return {"ok": state.hostname}

    @control_command(args=[("n", int)], signature="N")
    def stub_bump(state: Any, n: int = 1) -> Any:
        return {"ok": n}

    assert COMMANDS["stub_info"].kind == "inspect"
    assert COMMANDS["stub_info"].help == "Stub info."
    assert COMMANDS["stub_bump"].args == (("n", int),)


def run(app: StubApp, *argv: str, code: int = 0, given: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(argv), obj={"app": app, "app_spec": None}, input=given)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_verbs_read_their_arguments_and_print() -> None:
    """inspect/control/status/list/purge print readable blocks or JSON; errors exit non-zero."""
    app = make_app(
        {
            "ping": {"w1": {"ok": "pong"}},
            "query_task": {"w1": {}},
            "stats": {"w1": {"error": "boom"}},
            "rate_limit": {"w1": {"ok": "new rate limit set successfully"}},
            "hub_bindings": {
                "hub": [{"queue": "q", "exchange": "", "type": "direct", "routing_key": "q"}]
            },
            "hub_queues": {
                "hub": {"q": {"ready": 1, "delayed": 0, "unacked": 0, "consumers": ["w1"]}}
            },
            "purge": {"hub": {"purged": 2}},
        },
        missing=["w2"],
    )
    out = run(app, "inspect", "ping")
    assert "-> w1: OK\n    pong" in out
    assert "missing: w2 did not answer in time" in out
    assert "-> w1: ERROR" in run(app, "inspect", "stats")
    run(app, "inspect", "query_task", "a", "b")
    assert last(app)[1] == {"ids": ["a", "b"]}
    assert run(app, "inspect", "active", code=69)
    out = run(app, "control", "rate_limit", "t", "5/s", "-d", "w1,w3")
    assert last(app) == ("rate_limit", {"task_name": "t", "rate_limit": "5/s"}, ("w1", "w3"))
    assert "new rate limit set successfully" in out
    assert run(app, "control", "rate_limit", "a", "b", "c", code=2)
    assert run(app, "control", "nope", code=2)
    assert "revoked 2 task(s)" in run(app, "control", "revoke", "x", "y")
    assert json.loads(run(app, "status", "--json")) == ["w1"]
    assert "(default)" in run(app, "list", "bindings")
    assert "w1" in run(app, "list", "queues")
    assert "Aborted" in run(app, "purge", given="n\n", code=1)
    assert "Purged 2 message(s) from celery." in run(app, "purge", given="y\n")
    assert last(app)[1] == {"queues": ["celery"]}
    empty = make_app()
    assert run(empty, "status", code=69)
    assert "did not answer" in run(empty, "list", "queues", code=1)
