"""The request a running task sees is its delivery's: each field in its place (the executor
builds it by position, actors/execution.py)."""

from __future__ import annotations

from typing import Any

from celeriac import App
from celeriac._request import Request
from celeriac._serialization import dumps
from celeriac.actors.execution import TaskExecutor
from celeriac.transport import protocol as p


def test_every_field_of_the_request_comes_from_the_delivery() -> None:
    app = App("req", broker="tcp://127.0.0.1:1")
    seen: list[Request] = []

    @app.task(name="req.look", bind=True, soft_time_limit=7)
    def look(self: Any, a: int, b: int = 0) -> None:
        seen.append(self.request)

    ct, body = dumps([[1], {"b": 2}, {}], "json")
    message = p.TaskMessage(
        "id-1",
        "req.look",
        body,
        ct,
        queue="q",
        exchange="ex",
        routing_key="rk",
        root_id="root-1",
        parent_id="parent-1",
        group="group-1",
        origin="node@host",
        reply=True,
        ignore_result=True,
        eta=1.5,
        expires=4e9,
        priority=3,
        retries=2,
        timelimit=(None, 9.0),
        headers={"h": 1},
    )
    executor = TaskExecutor(
        app, hostname="worker@h", accept=frozenset({"application/json"}), result_serializer="json"
    )
    outcome = executor.execute(p.Delivery(message, "q", deliveries=2, tag="tag-1"))
    assert outcome.state == "SUCCESS"
    (request,) = seen
    assert (request.id, request.task, request.args, request.kwargs) == (
        "id-1",
        "req.look",
        (1,),
        {"b": 2},
    )
    assert (request.retries, request.hostname) == (2, "worker@h")
    assert (request.root_id, request.parent_id, request.group) == ("root-1", "parent-1", "group-1")
    assert (request.eta, request.expires, request.origin) == (1.5, 4e9, "node@host")
    assert request.delivery_info == {
        "queue": "q",
        "routing_key": "rk",
        "exchange": "ex",
        "priority": 3,
        "redelivered": True,
    }
    assert request.headers == {"h": 1}
    assert request.timelimit == (7, 9.0)  # the task's soft limit, the call's hard one
    assert (request.called_directly, request.is_eager) == (False, False)
    assert (request.ignore_result, request.reply_to) == (True, "node@host")
