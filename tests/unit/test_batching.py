"""Merged messages (issue 18): queued publishes and outcomes leave as one message, in order,
and lists of ids are split so that no header passes the size limit."""

from __future__ import annotations

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from celeriac._clock import FakeClock
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
