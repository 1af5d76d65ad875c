"""A result message as the user sees it (pure: no sockets, no client)."""

from __future__ import annotations

import json

import msgpack

from celeriac import states
from celeriac.runtime.client_waits import outcome_of
from celeriac.transport import protocol as p

JSON = frozenset({"application/json"})


def test_a_result_is_decoded_with_its_children() -> None:
    """A SUCCESS body in an accepted content type becomes the value; children are kept."""
    body = json.dumps([1, 2]).encode()
    outcome = outcome_of(p.ResultMessage("t1", states.SUCCESS, body, children=("c1",)), JSON)
    assert (outcome.state, outcome.value, outcome.children) == (states.SUCCESS, [1, 2], ("c1",))


def test_a_refused_publish_ends_rejected_with_publish_error() -> None:
    """The hub's refusal becomes a REJECTED outcome naming PublishError and the reason."""
    outcome = outcome_of(p.Refusal("t1", "queue full"), JSON)
    assert outcome.state == states.REJECTED
    assert outcome.value["exc_type"] == "PublishError"
    assert "queue full" in str(outcome.value["exc_message"])


def test_a_content_type_not_accepted_is_a_failure_not_a_crash() -> None:
    """A body this client does not accept ends FAILURE saying it cannot be decoded."""
    result = p.ResultMessage("t1", states.SUCCESS, b"\x80", content_type="application/x-python")
    outcome = outcome_of(result, JSON)
    assert outcome.state == states.FAILURE
    assert "cannot decode the result" in str(outcome.value["exc_message"])


def test_a_hub_made_result_is_msgpack() -> None:
    """A result the hub made (``hub``) is read as msgpack whatever this client accepts."""
    body = msgpack.packb({"exc_type": "TimeLimitExceeded"})
    outcome = outcome_of(p.ResultMessage("t1", states.FAILURE, body, hub=True), JSON)
    assert outcome.value == {"exc_type": "TimeLimitExceeded"}
