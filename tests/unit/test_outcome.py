"""The executor's typed outcome and its one conversion to the DONE message."""

from __future__ import annotations

import uuid
from typing import Any

from celeriac import App
from celeriac._serialization import dumps, loads
from celeriac.actors.execution import TaskExecutor
from celeriac.actors.outcome import Failure, TaskOutcome
from celeriac.exceptions import Ignore, Reject
from celeriac.runtime.outcomes import done_message

JSON = frozenset({"application/json"})


def run(app: App, name: str, *args: Any, **header: Any) -> TaskOutcome:
    """Execute one delivery of ``name`` in this thread."""
    task_id = uuid.uuid4().hex
    ct, body = dumps([list(args), {}, {}], "json")
    executor = TaskExecutor(app, hostname="h", accept=JSON, result_serializer="json")
    return executor.execute(
        {"id": task_id, "task": name, "ct": ct, **header}, body, {"tag": "t-" + task_id}
    )


def test_success_outcome_carries_the_encoded_result_and_the_delivery_tag() -> None:
    """A returned value is encoded in the result serializer; the tag and retries are kept."""
    app = App("oc", environ={})

    @app.task(name="oc.add")
    def add(x: int, y: int) -> int:
        return x + y

    outcome = run(app, "oc.add", 2, 3, retries=2)
    assert (outcome.state, outcome.store, outcome.failure, outcome.retries) == (
        "SUCCESS",
        True,
        None,
        2,
    )
    assert outcome.tag == "t-" + outcome.task_id
    assert loads(outcome.body, outcome.content_type, JSON) == 5


def test_failure_outcome_carries_typed_failure_info() -> None:
    """A raised exception gives FAILURE with its type, module, arguments and traceback."""
    app = App("oc", environ={})

    @app.task(name="oc.boom")
    def boom() -> None:
        raise KeyError("missing")

    outcome = run(app, "oc.boom", ignore_result=True)
    assert outcome.state == "FAILURE"
    assert not outcome.store
    failure = outcome.failure
    assert isinstance(failure, Failure)
    assert (failure.exc_type, failure.exc_module, failure.exc_message) == (
        "KeyError",
        "builtins",
        ("missing",),
    )
    assert failure.traceback is not None
    assert "KeyError" in failure.traceback
    assert loads(outcome.body, outcome.content_type, JSON)["exc_type"] == "KeyError"


def test_ignore_and_reject_outcomes() -> None:
    """Ignore reports SUCCESS with nothing stored; Reject reports REJECTED (requeue intent
    recorded)."""
    app = App("oc", environ={})

    @app.task(name="oc.ignore")
    def ignore() -> None:
        raise Ignore()

    @app.task(name="oc.reject")
    def reject() -> None:
        raise Reject("no")

    @app.task(name="oc.requeue")
    def requeue() -> None:
        raise Reject("later", requeue=True)

    ignored = run(app, "oc.ignore")
    assert (ignored.state, ignored.store, ignored.body) == ("SUCCESS", False, b"null")
    rejected = run(app, "oc.reject")
    assert (rejected.state, rejected.requeue) == ("REJECTED", False)
    requeued = run(app, "oc.requeue")
    assert (requeued.state, requeued.requeue) == ("REJECTED", True)


def test_done_message_keeps_todays_header_fields() -> None:
    """id, state, ct, store only when False, tag only when set, and the credit returned."""
    stored = TaskOutcome("id1", None, "SUCCESS", "application/json", b"5")
    assert done_message(stored, credit=1) == (
        {"id": "id1", "state": "SUCCESS", "ct": "application/json", "credit": 1},
        b"5",
    )
    dropped = TaskOutcome("id2", "tag2", "FAILURE", "application/json", b"{}", store=False)
    header, body = done_message(dropped, credit=0)
    assert header == {
        "id": "id2",
        "state": "FAILURE",
        "ct": "application/json",
        "store": False,
        "tag": "tag2",
        "credit": 0,
    }
    assert body == b"{}"
