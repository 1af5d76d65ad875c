"""The executor's typed outcome and its one conversion to the DONE message."""

from __future__ import annotations

import uuid
from typing import Any

import msgpack
import pytest

from celeriac import App, signals
from celeriac._serialization import dumps, loads
from celeriac.actors.execution import TaskExecutor
from celeriac.actors.outcome import Failure, TaskOutcome
from celeriac.exceptions import Ignore, Reject
from celeriac.runtime.outcomes import outcome_frames, outcome_message
from celeriac.transport import protocol as p

JSON = frozenset({"application/json"})


def run(app: App, name: str, *args: Any, **header: Any) -> TaskOutcome:
    """Execute one delivery of ``name`` in this thread."""
    task_id = uuid.uuid4().hex
    ct, body = dumps([list(args), {}, {}], "json")
    executor = TaskExecutor(app, hostname="h", accept=JSON, result_serializer="json")
    message = p.TaskMessage(task_id, name, body, ct, **header)
    return executor.execute(p.Delivery(message, "celery", tag="t-" + task_id))


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
    """Ignore ends IGNORED (stored, no value: Celery's state); Reject reports REJECTED (requeue
    intent recorded)."""
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
    assert (ignored.state, ignored.store, ignored.body) == ("IGNORED", True, b"null")
    rejected = run(app, "oc.reject")
    assert (rejected.state, rejected.requeue) == ("REJECTED", False)
    requeued = run(app, "oc.requeue")
    assert (requeued.state, requeued.requeue) == ("REJECTED", True)


def wire(outcome: TaskOutcome, credit: int) -> tuple[bytes, dict[str, Any], bytes]:
    """The command, header map and body the worker sends for ``outcome``."""
    frames = outcome_frames(outcome, credit=credit)
    return frames[1], msgpack.unpackb(frames[2]), frames[3]


@pytest.mark.parametrize(
    "outcome",
    [
        TaskOutcome("id1", None, "SUCCESS", "application/json", b"5"),
        TaskOutcome("id2", "tag2", "FAILURE", "application/json", b"{}", store=False),
        TaskOutcome("id3", "tag3", "RETRY", "application/json", b"[]", retry_eta=5.0),
        TaskOutcome("id4", None, "SUCCESS", "application/json", b"1", children=("c1", "c2")),
        TaskOutcome("id5", "tag5", "REJECTED", "application/json", b"", requeue=True),
        TaskOutcome("id6", None, "RETRY", "application/json", b"x" * 64, retry_eta=1.0),
    ],
)
@pytest.mark.parametrize("credit", [0, 1])
def test_the_slots_frames_are_the_messages(outcome: TaskOutcome, credit: int) -> None:
    """What a slot sends (made without the message, as a rule) is the message's encoding,
    a body over the limit included (a FAILURE made here in its place)."""
    for limit in (None, 32):
        frames = outcome_frames(outcome, credit=credit, max_size=limit)
        assert frames == p.encode(outcome_message(outcome, credit=credit, max_size=limit))
    too_large = p.decode(outcome_frames(outcome, credit=credit, max_size=32))
    if isinstance(too_large, p.Done) and len(outcome.body) > 32:
        (result,) = too_large.results
        assert (result.state, result.hub, result.retry_eta) == ("FAILURE", True, None)
        assert (result.id, result.tag, result.credit) == (outcome.task_id, outcome.tag, credit)


def test_done_message_keeps_todays_header_fields() -> None:
    """id, state, ct, store only when False, tag only when set, and the credit returned."""
    stored = TaskOutcome("id1", None, "SUCCESS", "application/json", b"5")
    assert wire(stored, credit=1) == (
        b"DONE",
        {"id": "id1", "state": "SUCCESS", "ct": "application/json", "credit": 1},
        b"5",
    )
    dropped = TaskOutcome("id2", "tag2", "FAILURE", "application/json", b"{}", store=False)
    command, header, body = wire(dropped, credit=0)
    assert command == b"DONE"
    assert header == {
        "id": "id2",
        "state": "FAILURE",
        "ct": "application/json",
        "store": False,
        "tag": "tag2",
    }
    assert body == b"{}"


def test_a_requeue_outcome_is_a_rej() -> None:
    """Reject(requeue=True) reaches the hub as REJ with the tag and the credit, no body."""
    requeue = TaskOutcome("id3", "tag3", "REJECTED", "application/json", b"", requeue=True)
    assert wire(requeue, credit=1) == (b"REJ", {"id": "id3", "tag": "tag3", "credit": 1}, b"")


def test_a_bug_in_the_executor_is_a_failure_and_sends_task_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception in the executor's own code (not the task's) ends the task FAILURE and sends
    task_internal_error with the task id, the exception and its traceback."""
    app = App("oc", environ={})
    ran: list[int] = []

    @app.task(name="oc.fine")
    def fine() -> int:
        ran.append(1)
        return 1

    def broken(self: TaskExecutor, *args: Any) -> TaskOutcome:
        raise RuntimeError("bug in the executor")

    monkeypatch.setattr(TaskExecutor, "_complete", broken)
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any = None, **kwargs: Any) -> None:
        seen.append(kwargs)

    with signals.task_internal_error.connected_to(receiver):
        outcome = run(app, "oc.fine")
    assert ran == [1]
    assert outcome.state == "FAILURE"
    assert outcome.failure is not None
    assert outcome.failure.exc_type == "RuntimeError"
    (sent,) = seen
    assert sent["task_id"] == outcome.task_id
    assert isinstance(sent["exception"], RuntimeError)
    assert "bug in the executor" in sent["traceback"]
