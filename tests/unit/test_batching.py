"""Merged messages (issue 18): queued publishes and outcomes leave as one message, in order,
and lists of ids are split so that no header passes the size limit."""

from __future__ import annotations

import contextlib
from collections import deque

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac._clock import FakeClock
from celeriac._wire_items import PACK_BYTES
from celeriac.exceptions import FrameError
from celeriac.transport import protocol as p
from celeriac.transport.hub import HubState
from celeriac.transport.session import ClientSession
from celeriac.transport.session.effects import Send
from celeriac.transport.store_memory import MemoryStore

C = b"client"


def _pub(i: int) -> list[bytes]:
    return p.encode(p.Publish((p.TaskMessage(f"t{i}", "add", queue="celery"),)))


def test_consecutive_item_messages_merge_in_order() -> None:
    queue = deque([_pub(1), _pub(2), _pub(3)])
    merged = p.next_batch(queue)
    assert not queue
    message = p.decode(merged)
    assert isinstance(message, p.Publish)
    assert [t.id for t in message.tasks] == ["t1", "t2", "t3"]


def test_a_control_command_is_never_merged_and_stops_a_batch() -> None:
    credit = p.encode(p.Credit(3))
    queue = deque([_pub(1), credit, _pub(2), _pub(3)])
    first = p.decode(p.next_batch(queue))
    assert isinstance(first, p.Publish)
    assert [t.id for t in first.tasks] == ["t1"]
    assert p.decode(p.next_batch(queue)) == p.Credit(3)
    rest = p.decode(p.next_batch(queue))
    assert isinstance(rest, p.Publish)
    assert [t.id for t in rest.tasks] == ["t2", "t3"]


@given(st.lists(st.sampled_from(["pub", "done", "credit"]), min_size=1, max_size=600))
def test_batches_keep_every_item_in_order_and_bounded(kinds: list[str]) -> None:
    def message(i: int, kind: str) -> list[bytes]:
        if kind == "pub":
            return _pub(i)
        if kind == "done":
            return p.encode(p.Done((p.ResultMessage(f"t{i}", "SUCCESS", b"1"),)))
        return p.encode(p.Credit(i + 1))

    queue = deque(message(i, k) for i, k in enumerate(kinds))
    seen: list[str] = []
    while queue:
        decoded = p.decode(p.next_batch(queue))
        if isinstance(decoded, p.Publish):
            assert len(decoded.tasks) <= p.BATCH_ITEMS
            seen += [t.id for t in decoded.tasks]
        elif isinstance(decoded, p.Done):
            assert len(decoded.results) <= p.BATCH_ITEMS
            seen += [r.id for r in decoded.results]
        else:
            assert isinstance(decoded, p.Credit)
            seen.append(f"t{decoded.credit - 1}")
    assert seen == [f"t{i}" for i in range(len(kinds))]


def test_the_hub_confirms_a_large_batch_in_messages_under_the_header_limit() -> None:
    """Before the split, 3,459 ids made one 131 kB CONF that the client refused as malformed,
    and every one of those publishes was reported lost."""
    hub = HubState(MemoryStore(), FakeClock(), hub_id="hub-a")
    hub.handle(C, p.encode(p.Hello("client", "c1")))
    hub.handle(C, p.encode(p.Declare(queues=(p.QueueDecl("celery"),))))
    hub.outbox.clear()
    long_ids = [f"{i:0>250}" for i in range(1000)]  # near the longest id a name may have
    for start in range(0, len(long_ids), 250):
        tasks = tuple(
            p.TaskMessage(i, "add", queue="celery") for i in long_ids[start : start + 250]
        )
        hub.handle(C, p.encode(p.Publish(tasks)))
    hub._flush_confirms()
    confirmed: list[str] = []
    for frames in hub.outbox:
        assert frames[0] == C
        assert len(frames[3]) < p.MAX_HEADER_BYTES
        message = p.decode(frames[1:])
        if isinstance(message, p.Confirm):
            confirmed += message.ids
    assert confirmed == long_ids


def test_waits_resent_to_a_new_hub_are_split() -> None:
    session = ClientSession(
        endpoint="tcp://127.0.0.1:5555",
        declare=p.Declare(),
        heartbeat=2.0,
        connect_timeout=4.0,
        now=0.0,
    )
    session.connect()
    session.handle(p.Welcome("hub-a", 2.0), 0.0)
    ids = [f"{i:0>250}" for i in range(450)]  # near the longest id a name may have
    for task_id in ids:
        session.await_result(task_id)
    effects = session.handle(p.Welcome("hub-b", 2.0), 1.0)
    waits = [e.message for e in effects if isinstance(e, Send) and isinstance(e.message, p.Wait)]
    assert len(waits) > 1
    assert all(len(p.encode(w)[2]) < p.MAX_HEADER_BYTES for w in waits)
    assert sorted(i for w in waits for i in w.ids) == ids


# -- packed: a merged message's item frames in one frame (celeriac._wire_items) ---------------


def _task(i: int, body: bytes = b"[]") -> list[bytes]:
    return p.encode(p.Publish((p.TaskMessage(f"t{i}", "add", queue="celery", body=body),)))


def test_merged_messages_leave_packed_in_three_frames_and_decode_the_same() -> None:
    messages = [_task(i) for i in range(40)]
    unpacked = [p.TAG, b"PUB", *(f for m in messages for f in m[2:])]
    packed = p.next_batch(deque(list(m) for m in messages))
    assert len(packed) == 3
    assert packed[:2] == [p.TAG, b"PUB"]
    assert p.packed_count(packed[2]) == 80
    assert p.decode(packed) == p.decode(unpacked)


def test_a_message_merged_with_none_leaves_as_it_is() -> None:
    alone = _task(1)
    assert p.next_batch(deque([list(alone)])) == alone
    credit = p.encode(p.Credit(1))
    queue = deque([list(alone), credit])
    assert p.next_batch(queue) == alone
    assert list(queue) == [credit]


def test_a_batch_packs_at_most_pack_bytes_and_a_larger_message_leaves_alone() -> None:
    big = b"x" * (PACK_BYTES // 3)
    queue = deque([_task(i, big) for i in range(4)] + [_task(9, b"y" * (PACK_BYTES + 1))])
    first = p.next_batch(queue)
    assert len(first) == 3
    assert len(first[2]) <= PACK_BYTES
    assert [t.id for t in p.decode(first).tasks] == ["t0", "t1"]  # type: ignore[attr-defined]
    second = p.next_batch(queue)
    assert [t.id for t in p.decode(second).tasks] == ["t2", "t3"]  # type: ignore[attr-defined]
    third = p.next_batch(queue)
    assert len(third) == 4
    assert p.decode(third).tasks[0].id == "t9"
    assert not queue


def test_the_hubs_frame_slack_holds_a_packed_frame_whatever_the_message_size_setting() -> None:
    from celeriac.transport.sockets import max_frame_size  # noqa: PLC0415

    assert max_frame_size(1) > PACK_BYTES + 64 * 1024  # items' own headers above the bound


@pytest.mark.parametrize(
    ("packed", "words"),
    [
        (b"\xc1", "packed items"),  # never used in msgpack
        (msgpack.packb(["header", "body"]), "packed items"),  # text, not binaries
        (msgpack.packb([b"h", 1]), "packed items"),
        (msgpack.packb({"a": b"b"}), "packed items"),
        (msgpack.packb([]), "groups of 2"),
        (msgpack.packb([b"only the header"]), "groups of 2"),
        (b"\xdd\xff\xff\xff\xff", "exceed"),  # four billion frames claimed, none sent
        (msgpack.packb([msgpack.packb({"id": 5}), b""]), "TaskMessage.id"),  # as any item
    ],
)
def test_a_malformed_packed_frame_is_a_frame_error(packed: bytes, words: str) -> None:
    with pytest.raises(FrameError, match=words):
        p.decode([p.TAG, b"PUB", packed])


def test_three_frames_of_a_control_command_or_an_unknown_one_are_refused() -> None:
    for command in (b"CRED", b"NOPE"):
        with pytest.raises(FrameError, match="at least 4 frames"):
            p.decode([p.TAG, command, msgpack.packb([b"", b""])])


@given(st.binary(max_size=300))
def test_any_packed_frame_is_a_message_or_a_frame_error(packed: bytes) -> None:
    for command in (b"PUB", b"TASK", b"DONE", b"NACK"):
        with contextlib.suppress(FrameError):
            p.decode([p.TAG, command, packed])


@given(st.lists(st.binary(max_size=20), max_size=12))
def test_any_packed_list_of_binaries_is_a_message_or_a_frame_error(parts: list[bytes]) -> None:
    for command in (b"PUB", b"TASK", b"RES", b"START"):
        with contextlib.suppress(FrameError):
            p.decode([p.TAG, command, msgpack.packb(parts)])


@pytest.mark.parametrize("count", [0, 5, 15, 16, 65535, 65536])
def test_packed_count_reads_each_array_header(count: int) -> None:
    assert p.packed_count(msgpack.packb([b""] * count)) == count


def test_a_message_holds_its_frames_a_packed_one_those_it_packs() -> None:
    messages = [_task(i) for i in range(5)]
    assert p.frames_held(messages[0]) == 4
    assert p.frames_held(p.next_batch(deque(list(m) for m in messages))) == 2 + 10
