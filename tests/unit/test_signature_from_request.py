"""Task.signature_from_request (and its old name): the call a request describes, to resend."""

from __future__ import annotations

import datetime as dt

from celeriac import App
from celeriac._compose import OPTION_NAMES
from celeriac._request import Request


def test_the_signature_carries_the_request() -> None:
    """Same id, lineage, group, time limits, expiry, headers, priority and queue; arguments and
    queue replaced when given; extra options win."""
    app = App("t", environ={})

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    request = Request(
        id="abc",
        task="t.add",
        args=(1, 2),
        kwargs={},
        root_id="root",
        parent_id="parent",
        group="g",
        expires=1_700_000_000.0,
        delivery_info={"queue": "math", "priority": 5},
        headers={"tenant": "x"},
        timelimit=(10.0, 20.0),
    )
    sig = add.signature_from_request(request)
    assert (sig.task, tuple(sig.args), sig.kwargs) == ("t.add", (1, 2), {})
    assert sig.options["task_id"] == "abc"
    assert (sig.options["root_id"], sig.options["parent_id"]) == ("root", "parent")
    assert sig.options["group_id"] == "g"
    assert sig.options["expires"] == dt.datetime.fromtimestamp(1_700_000_000.0, dt.UTC)
    assert (sig.options["soft_time_limit"], sig.options["time_limit"]) == (10.0, 20.0)
    assert sig.options["headers"] == {"tenant": "x"}
    assert (sig.options["priority"], sig.options["queue"]) == (5, "math")
    assert set(sig.options) <= OPTION_NAMES  # every option is one apply_async takes
    other = add.subtask_from_request(request, args=(3, 4), queue="fast", countdown=2)
    assert tuple(other.args) == (3, 4)
    assert (other.options["queue"], other.options["countdown"]) == ("fast", 2)
    app.close()
