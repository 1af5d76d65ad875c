"""The fast path of the hot headers (celeriac/_wire_fast.py) accepts only what the usual path
accepts, and gives the same message; anything else it leaves to the usual path."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac import _wire, _wire_checks, _wire_items, _wire_parts
from celeriac.exceptions import FrameError
from celeriac.transport import protocol as p

_CASES = [
    (_wire_items._FAST_TASK, _wire_parts.TASK),
    (_wire_items._FAST_RESULT, _wire_parts.RESULT),
]

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.text(min_size=250, max_size=300)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def _usual(table: _wire_checks._Table, header: bytes) -> Any:
    try:
        return table.load(_wire_items.unpack(header), body=b"b")
    except _wire_checks._Bad:
        return None


@settings(max_examples=120)
@given(st.sampled_from(range(len(_CASES))), st.data())
def test_the_fast_path_accepts_only_what_the_usual_one_does(case: int, data: st.DataObject) -> None:
    """Random headers under the real keys: the fast path gives the usual message, or none."""
    fast, table = _CASES[case]
    keys = st.sampled_from([*table.by_key, "body"]) | st.text(max_size=6)
    header = msgpack.packb(data.draw(st.dictionaries(keys, _values, max_size=10)))
    got = fast.load(header, b"b")
    if got is not None:
        assert got == _usual(table, header)
        assert got.raw is header


@settings(max_examples=80)
@given(st.dictionaries(st.sampled_from(["queue", "deliveries", "tag", "x"]), _values))
def test_a_delivery_s_info_takes_the_same_checks(info: dict[str, Any]) -> None:
    """A TASK's delivery info: the fast path's delivery is the usual path's, or it has none."""
    header = p.encode(p.Publish((p.TaskMessage("id", "t"),)))[2]
    meta = msgpack.packb(info)
    fast = _wire_items._FAST_META.values(meta)
    if fast is not None:
        task = _wire_items._load_task(header, b"")
        assert p.Delivery(task, *fast) == _usual_delivery(header, meta)


def _usual_delivery(header: bytes, meta: bytes) -> p.Delivery | None:
    try:
        return _wire_items._load_delivery_checked(header, b"", meta)
    except _wire_checks._Bad:
        return None


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "a", "retries": True},  # a bool is no count
        {"id": "a", "reply": 1},  # an int is no flag
        {"id": "a", "retries": -1},
        {"id": "x" * 256},
        {"id": "a", "queue": b"q"},  # bin is no string
        {"task": "t"},  # the id missing
        {"id": "a", "eta": 1.0},  # a rarer field: the usual path checks it
        {"id": "a", "unroutable": "error"},
        {"id": "a", "body": b"x"},  # no header field: the usual path ignores it
    ],
)
def test_what_the_fast_path_leaves_to_the_usual_one(fields: dict[str, Any]) -> None:
    """Refused values, a missing id and the rarer fields go the usual way."""
    assert _wire_items._FAST_TASK.load(msgpack.packb(fields, use_bin_type=True), b"") is None


def test_a_usual_task_takes_the_fast_path() -> None:
    """A task as clients send it is decoded by msgspec, equal to the usual path's."""
    task = p.TaskMessage("id", "t", b"[]", queue="q", exchange="q", origin="n:1", reply=True)
    header = p.encode(p.Publish((task,)))[2]
    fast = _wire_items._FAST_TASK.load(header, task.body)
    assert fast == task
    assert fast.raw is header
    assert fast.body is task.body  # the frame's, set after the header's fields
    result = p.ResultMessage("id", "SUCCESS", b"5", credit=1)
    header = p.encode(p.Done((result,)))[2]
    loaded = _wire_items._FAST_RESULT.load(header, b"5")
    assert (loaded, loaded.body) == (result, b"5")


def test_an_unknown_field_goes_the_usual_way() -> None:
    """msgspec would skip an unknown field's value unchecked; the usual path refuses a map
    with a non-string key anywhere (msgpack's strict map keys)."""
    header = msgpack.packb({"id": "a", "newer": {1: 2}})
    assert _wire_items._FAST_TASK.load(header, b"") is None
    with pytest.raises(FrameError, match="not valid msgpack"):
        _wire.decode([p.TAG, b"PUB", header, b""])


def test_a_delivery_info_seen_before_decodes_as_the_first_time() -> None:
    """Delivery infos are kept by their bytes (but a tagged one, a single delivery's): the
    same bytes give the same queue and count, other bytes their own."""
    task = p.TaskMessage("t1", "x.add", b"[]", queue="q")
    deliveries = (
        p.Delivery(task, "q"),
        p.Delivery(task, "q"),
        p.Delivery(task, "q", deliveries=3),
        p.Delivery(task, "other", tag="t1#2"),
    )
    frames = _wire.encode(p.Deliver(deliveries))
    for _ in range(2):
        decoded = _wire.decode(frames)
        assert isinstance(decoded, p.Deliver)
        assert decoded.deliveries == deliveries
    assert frames[4] in _wire_items._meta_seen  # the untagged infos were kept
    assert frames[13] not in _wire_items._meta_seen  # the tagged one was not
    bad = [*frames[:4], msgpack.packb({"queue": 5})]
    with pytest.raises(FrameError):  # not taken for a kept one: checked as always
        _wire.decode(bad)
