"""The typed wire protocol: round trips for every command; malformed input gives FrameError only."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac import _wire, _wire_parts
from celeriac.exceptions import FrameError
from celeriac.transport import protocol as p

pytestmark = pytest.mark.property

names = st.text(max_size=12)
ids = st.text(min_size=1, max_size=40)
counts = st.integers(0, p.MAX_COUNT)
times = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
seconds = st.floats(0, 1e9, allow_nan=False, allow_infinity=False)
plain = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
maybe = st.none

bindings = st.builds(p.Binding, names, names)
exchange_decls = st.builds(p.ExchangeDecl, names, st.sampled_from(["direct", "topic", "fanout"]))
queue_decls = st.builds(
    p.QueueDecl,
    names,
    maybe() | st.integers(0, 255),
    st.lists(bindings, max_size=3).map(tuple),
)
declares = st.builds(
    p.Declare,
    st.lists(exchange_decls, max_size=3).map(tuple),
    st.lists(queue_decls, max_size=3).map(tuple),
)
tasks = st.builds(
    p.TaskMessage,
    id=ids,
    task=names,
    body=st.binary(max_size=32),
    content_type=names,
    queue=names,
    exchange=maybe() | names,
    routing_key=maybe() | names,
    root_id=maybe() | ids,
    parent_id=maybe() | ids,
    group=maybe() | ids,
    origin=maybe() | names,
    reply=st.booleans(),
    ignore_result=maybe() | st.booleans(),
    eta=maybe() | times,
    expires=maybe() | times,
    priority=maybe() | st.integers(0, 255),
    retries=counts,
    timelimit=maybe() | st.tuples(maybe() | seconds, maybe() | seconds),
    headers=maybe() | st.dictionaries(names, plain, max_size=3),
    unroutable=st.sampled_from(["error", "dead_letter"]),
    dead_letter=maybe() | st.builds(p.DeadLetter, names, names, times),
    chord=maybe() | ids,
    chord_size=maybe() | counts,
)
results = st.builds(
    p.ResultMessage,
    id=ids,
    state=st.sampled_from(["SUCCESS", "FAILURE", "REJECTED"]),
    body=st.binary(max_size=32),
    content_type=names,
    tag=maybe() | ids,
    store=st.booleans(),
    credit=counts,
    hub=st.booleans(),
    retry_eta=maybe() | times,
)
deliveries = st.builds(p.Delivery, tasks, names, counts, maybe() | ids)


def items(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(strategy, min_size=1, max_size=3).map(tuple)


id_lists = st.lists(ids, max_size=4).map(tuple)
arguments = st.dictionaries(names, plain, max_size=3)
control_strategies: dict[type, st.SearchStrategy[Any]] = {
    p.ControlJoin: st.builds(p.ControlJoin, names),
    p.ControlRequest: st.builds(
        p.ControlRequest, ids, names, arguments, maybe() | id_lists, st.booleans()
    ),
    p.ControlSent: st.builds(p.ControlSent, ids, id_lists, id_lists),
    p.ControlCommand: st.builds(p.ControlCommand, ids, names, arguments, st.booleans()),
    p.ControlReply: st.builds(p.ControlReply, ids, names, st.binary(max_size=32)),
    p.ControlReplyPart: st.builds(p.ControlReplyPart, ids, names, st.binary(max_size=32)),
    p.EventBatch: st.builds(
        p.EventBatch,
        st.lists(
            st.fixed_dictionaries({"type": names}, optional={"hostname": names}), max_size=3
        ).map(tuple),
    ),
}
by_command: dict[type, st.SearchStrategy[Any]] = {
    p.Hello: st.builds(
        p.Hello,
        st.sampled_from(["client", "worker"]),
        names,
        maybe() | counts,
        maybe() | st.sampled_from(["requeue", "fail"]),
        st.lists(names, max_size=3).map(tuple),
        maybe() | declares,
        counts,
        id_lists,
    ),
    p.Declare: declares,
    p.Welcome: st.builds(p.Welcome, names, seconds),
    p.Publish: st.builds(p.Publish, items(tasks)),
    p.Confirm: st.builds(p.Confirm, id_lists),
    p.Nack: st.builds(p.Nack, items(st.builds(p.Refusal, ids, names))),
    p.Deliver: st.builds(p.Deliver, items(deliveries)),
    p.Done: st.builds(p.Done, items(results)),
    p.Credit: st.builds(p.Credit, counts),
    p.Start: st.builds(p.Start, items(st.builds(p.TaskRef, ids, maybe() | ids))),
    p.Reject: st.builds(
        p.Reject,
        items(st.builds(p.Rejection, ids, maybe() | ids, st.booleans(), maybe() | names, counts)),
    ),
    p.Consume: st.builds(p.Consume, st.lists(names, max_size=3).map(tuple)),
    p.Wait: st.builds(p.Wait, id_lists),
    p.Result: st.builds(p.Result, items(results)),
    p.Stat: st.builds(p.Stat, ids, maybe() | counts | names),
    p.Reply: st.builds(p.Reply, ids, names, maybe() | counts | names),
    p.Forget: st.builds(p.Forget, ids),
    p.Revoke: st.builds(p.Revoke, id_lists, st.booleans(), maybe() | names),
    p.RevokeHeld: st.builds(p.RevokeHeld, id_lists, st.booleans(), maybe() | names),
    p.Ping: st.builds(p.Ping, maybe() | names, maybe() | counts),
    p.Pong: st.builds(p.Pong, maybe() | names, maybe() | st.booleans()),
    p.Bye: st.just(p.Bye()),
    p.Error: st.builds(p.Error, names, maybe() | names, maybe() | names),
    p.BeatLease: st.builds(p.BeatLease, names, names, seconds, maybe() | counts | names),
    p.BeatSave: st.builds(
        p.BeatSave, names, names, st.dictionaries(names, times, max_size=3), maybe() | counts
    ),
    p.BeatGrant: st.builds(
        p.BeatGrant,
        names,
        st.booleans(),
        maybe() | names,
        seconds,
        st.dictionaries(names, times, max_size=3),
        maybe() | counts,
    ),
    **control_strategies,
    # keyed actors and locks (issue 12)
    p.KeyedActivate: st.builds(p.KeyedActivate, names, maybe() | st.binary(max_size=32)),
    p.KeyedSave: st.builds(p.KeyedSave, names, st.binary(max_size=32)),
    p.KeyedIdle: st.builds(p.KeyedIdle, names),
    p.KeyedStop: st.builds(p.KeyedStop, names),
    p.LockAcquire: st.builds(
        p.LockAcquire, names, names, seconds, maybe() | counts | names, maybe() | seconds
    ),
    p.LockRelease: st.builds(p.LockRelease, names, names, maybe() | counts | names),
    p.LockQuery: st.builds(p.LockQuery, names, maybe() | counts | names),
}
by_command.update(  # issue 10's commands (celeriac._protocol_compat)
    {
        p.TaskState: st.builds(
            p.TaskState, ids, maybe() | ids, maybe() | names, st.binary(max_size=64), names
        ),
        p.InfoQuery: st.builds(p.InfoQuery, ids, maybe() | counts | names),
        p.TaskInfo: st.builds(
            p.TaskInfo,
            ids,
            names,
            maybe() | counts | names,
            maybe() | st.binary(max_size=64),
            maybe() | names,
            maybe() | names,
            maybe() | names,
            maybe() | names,
            maybe() | counts,
            maybe() | seconds,
            maybe() | st.binary(max_size=64),
        ),
    }
)
messages = st.one_of(*by_command.values())


@settings(max_examples=300)
@given(messages)
def test_every_command_round_trips(message: p.Message) -> None:
    """Any message of any command survives encode then decode unchanged."""
    frames = p.encode(message)
    assert frames[0] == p.TAG
    assert frames[1] == message.COMMAND
    assert p.decode(frames) == message


def test_every_command_is_covered() -> None:
    """The round-trip strategy builds every command the codec knows."""
    assert {cls.COMMAND for cls in by_command} == set(p.COMMANDS)


@given(tasks)
def test_a_decoded_task_is_forwarded_with_the_same_header_bytes(task: p.TaskMessage) -> None:
    """The hub re-sends a decoded task's header as received, without encoding it again."""
    frames = p.encode(p.Publish((task,)))
    (decoded,) = p.decode(frames).tasks  # type: ignore[union-attr]
    deliver = p.encode(p.Deliver((p.Delivery(decoded, "q"),)))
    assert deliver[2] is decoded.raw
    assert deliver[2] == frames[2]


@given(tasks, names, st.integers(1, 1000), maybe() | ids)
def test_delivery_frames_are_those_of_a_one_delivery_task_message(
    task: p.TaskMessage, queue: str, deliveries: int, tag: str | None
) -> None:
    """The hub's shortcut for one delivery makes the frames the codec makes, and so do
    its shortcut for one pushed result and the client's for one publish."""
    (decoded,) = p.decode(p.encode(p.Publish((task,)))).tasks  # type: ignore[union-attr]
    for sent in (task, decoded):
        delivery = p.Delivery(sent, queue, deliveries, tag)
        assert p.delivery_frames(sent, queue, deliveries, tag) == p.encode(p.Deliver((delivery,)))
        assert p.publish_frames(sent) == p.encode(p.Publish((sent,)))
    result = p.ResultMessage(task.id, "SUCCESS", body=task.body, tag=tag)
    assert p.result_frames(result) == p.encode(p.Result((result,)))


def check_only_frame_error(frames: list[bytes]) -> None:
    """Decoding gives a message of the frame's command, or a FrameError keeping the frames."""
    caught: list[FrameError] = []
    try:
        message = p.decode(frames)
    except FrameError as exc:
        caught.append(exc)
    if caught:
        assert caught[0].frames == frames
    else:
        assert frames[1] == message.COMMAND


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_frames_give_a_message_or_frame_error(frames: list[bytes]) -> None:
    """Random frames decode or raise FrameError, never anything else."""
    check_only_frame_error(frames)


def wire_keys(command: bytes) -> list[str]:
    """The wire names of a command's header (or item header) fields, to aim the fuzzer."""
    control = _wire._CONTROL.get(command)
    if control is not None:
        return list(control.by_key)
    items = {b"PUB": _wire_parts.TASK, b"TASK": _wire_parts.TASK, b"NACK": _wire_parts.REFUSAL}
    items |= {b"START": _wire_parts.TASK_REF, b"REJ": _wire_parts.REJECTION}
    table = items.get(command, _wire_parts.RESULT)
    return list(table.by_key)


values = st.recursive(
    plain
    | st.binary(max_size=8)
    | st.floats()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(min_size=250, max_size=300),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def fuzzed_messages(draw: st.DrawFn) -> list[bytes]:
    """A valid tag and command with msgpack headers of random shape, often with real keys."""
    command = draw(st.sampled_from(sorted(p.COMMANDS)))
    real = wire_keys(command)
    keys = (st.sampled_from(real) if real else st.nothing()) | st.text(max_size=8)
    size = 3 if command == b"TASK" else 2
    frames = [p.TAG, command]
    for _ in range(draw(st.integers(1, 3))):
        header = draw(st.dictionaries(keys, values, max_size=8) | values)
        frames.append(msgpack.packb(header))
        frames.append(draw(st.just(b"") | st.binary(max_size=8)))
        if size == 3:
            meta = draw(st.dictionaries(st.sampled_from(["queue", "deliveries", "tag"]), values))
            frames.append(msgpack.packb(meta))
    return frames


@settings(max_examples=250)
@given(fuzzed_messages())
def test_random_msgpack_headers_give_a_message_or_frame_error(frames: list[bytes]) -> None:
    """Headers of any shape under real field names decode or raise FrameError, nothing else."""
    check_only_frame_error(frames)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ([p.TAG, b"STAT", msgpack.packb({"id": ["a"]}), b""], "Stat.id"),
        ([p.TAG, b"HELLO", msgpack.packb({"credit": math.inf}), b""], "Hello.credit"),
        ([p.TAG, b"HELLO", msgpack.packb({"credit": -1}), b""], "Hello.credit"),
        ([p.TAG, b"CRED", msgpack.packb({"credit": True}), b""], "Credit.credit"),
        ([p.TAG, b"PUB", msgpack.packb({"id": "a", "eta": math.nan}), b""], "eta"),
        ([p.TAG, b"PUB", msgpack.packb({"id": "a", "priority": 256}), b""], "priority"),
        ([p.TAG, b"PUB", msgpack.packb({"id": "x" * 256}), b""], "TaskMessage.id"),
        ([p.TAG, b"PUB", msgpack.packb({"task": "t"}), b""], "missing"),
        ([p.TAG, b"PUB", msgpack.packb({"id": "a", "timelimit": [1]}), b""], "timelimit"),
        ([p.TAG, b"WAIT", msgpack.packb({"ids": "abc"}), b""], "Wait.ids"),
        ([p.TAG, b"WAIT", msgpack.packb({"ids": []}), b"body"], "no body"),
        ([p.TAG, b"TASK", msgpack.packb({"id": "a"}), b""], "groups of 3"),
        ([b"CLR1", b"PING", msgpack.packb({}), b""], "protocol tag"),
        ([p.TAG, b"NOPE", msgpack.packb({}), b""], "unknown command"),
        ([p.TAG, b"PING", msgpack.packb([1]), b""], "expected a map"),
        ([p.TAG, b"PING", b"\xc1", b""], "not valid msgpack"),
        ([p.TAG, b"PING", msgpack.packb({"x": "y" * 70_000}), b""], "exceeds"),
    ],
)
def test_each_kind_of_malformed_field_is_refused_with_a_reason(
    frames: list[bytes], match: str
) -> None:
    """Wrong types, unbounded counts, inf/NaN, lists for strings and bad framing are refused."""
    with pytest.raises(FrameError, match=match):
        p.decode(frames)


def test_one_message_carries_many_items() -> None:
    """PUB, TASK, DONE... carry one frame group per item, so a batch is one message."""
    batch = p.Publish((p.TaskMessage("a", "t"), p.TaskMessage("b", "t", b"x")))
    frames = p.encode(batch)
    assert len(frames) == 6
    assert [t.id for t in p.decode(frames).tasks] == ["a", "b"]  # type: ignore[union-attr]


def test_an_item_command_without_items_is_a_local_error() -> None:
    """Encoding an empty batch is a bug on this side, not a frame to send."""
    with pytest.raises(ValueError, match="at least one item"):
        p.encode(p.Done(()))


def test_failure_info_round_trips_through_its_map() -> None:
    """A failure body's map reads back as the same FailureInfo; other values read as None."""
    info = p.FailureInfo("KeyError", "builtins", ("k",), "Traceback...")
    assert p.failure_from_map(p.failure_map(info)) == info
    assert p.failure_from_map({"exc_type": 1}) is None
    assert p.failure_from_map("x") is None
