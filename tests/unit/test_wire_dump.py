"""A table's dump (made as straight-line code, celeriac/_wire_checks.py) writes the map the
table describes: every field but those at their default, the ``always`` ones at any value, in
the table's order, each through its dump function; and encode's per-type frames are the
items' frame groups."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from celeriac import _wire_checks, _wire_parts
from celeriac.transport import protocol as p


def _reference(table: _wire_checks._Table, obj: Any) -> dict[str, Any]:
    """The table read field by field, as the loop that preceded the made dump did."""
    out: dict[str, Any] = {}
    for key, attr, _, dump in table.fields:
        value = getattr(obj, attr)
        default = table.defaults[attr]
        if attr in table.always or (value is not default and value != default):
            out[key] = value if dump is None else dump(value)
    return out


_names = st.text(min_size=1, max_size=12)

_results = st.builds(
    p.ResultMessage,
    id=_names,
    state=st.sampled_from(["SUCCESS", "FAILURE", "RETRY"]),
    body=st.binary(max_size=8),
    content_type=st.sampled_from(["application/json", "application/x-msgpack"]),
    tag=st.none() | _names,
    store=st.booleans(),
    credit=st.integers(0, 3),
    hub=st.booleans(),
    retry_eta=st.none() | st.floats(0, 1e10),
    children=st.lists(_names, max_size=2).map(tuple),
)

_tasks = st.builds(
    p.TaskMessage,
    id=_names,
    task=_names,
    body=st.binary(max_size=8),
    content_type=st.just("application/json"),
    queue=_names,
    exchange=st.none() | st.just(""),
    routing_key=st.none() | _names,
    root_id=st.none() | _names,
    reply=st.booleans(),
    ignore_result=st.none() | st.booleans(),
    eta=st.none() | st.floats(0, 1e10),
    priority=st.none() | st.integers(0, 9),
    retries=st.integers(0, 5),
    timelimit=st.none() | st.tuples(st.none() | st.floats(1, 9), st.none() | st.floats(1, 9)),
    headers=st.none() | st.dictionaries(_names, st.integers(), max_size=2),
)


@given(_results)
def test_result_dump_is_the_tables_map_in_order(result: p.ResultMessage) -> None:
    dumped = _wire_parts.RESULT.dump(result)
    assert list(dumped.items()) == list(_reference(_wire_parts.RESULT, result).items())


@given(_tasks)
def test_task_dump_is_the_tables_map_in_order(task: p.TaskMessage) -> None:
    dumped = _wire_parts.TASK.dump(task)
    assert list(dumped.items()) == list(_reference(_wire_parts.TASK, task).items())
    if task.timelimit is not None:  # through its dump function: a list on the wire
        assert dumped["timelimit"] == list(task.timelimit)


def test_fields_at_their_default_are_left_out_but_the_always_ones() -> None:
    result = p.ResultMessage("id1", "SUCCESS")
    assert _wire_parts.RESULT.dump(result) == {
        "id": "id1",
        "state": "SUCCESS",
        "ct": "application/json",
    }
    changed = dataclasses.replace(result, store=False, credit=2)
    assert _wire_parts.RESULT.dump(changed)["store"] is False
    assert _wire_parts.RESULT.dump(changed)["credit"] == 2


@given(st.lists(_results, min_size=1, max_size=3))
def test_done_frames_are_each_results_header_and_body(results: list[p.ResultMessage]) -> None:
    frames = p.encode(p.Done(tuple(results)))
    assert frames[:2] == [p.TAG, b"DONE"]
    expected: list[bytes] = []
    for r in results:
        expected += [_wire_parts.packb(_reference(_wire_parts.RESULT, r)), r.body]
    assert frames[2:] == expected
    assert p.decode(frames) == p.Done(tuple(results))
