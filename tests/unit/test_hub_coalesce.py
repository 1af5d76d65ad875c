"""The hub's loop merges each peer's consecutive item messages of a turn (``_coalesced``)."""

from __future__ import annotations

from celeriac.transport import protocol as p
from celeriac.transport.hub.outbox import coalesced as _coalesced


def _task(i: int) -> p.TaskMessage:
    return p.TaskMessage(id=f"t{i}", task="x.y", body=b"%d" % i)


def _out(identity: bytes, message: p.Message) -> list[bytes]:
    return [identity, *p.encode(message)]


def test_each_peers_deliveries_merge_in_order() -> None:
    """Deliveries to two workers interleaved, a control message between: per worker, the
    deliveries before the control message leave as one TASK, those after as another, in
    order; the other worker's as one."""
    outbox = []
    for i in range(6):
        worker = b"w1" if i % 2 == 0 else b"w2"
        outbox.append(_out(worker, p.Deliver((p.Delivery(_task(i), "celery"),))))
        if i == 2:
            outbox.append(_out(b"w1", p.Error("hello", hub="h")))
    merged = _coalesced(outbox)
    by_peer: dict[bytes, list[p.Message]] = {}
    for frames in merged:
        by_peer.setdefault(frames[0], []).append(p.decode(frames[1:]))
    w1 = by_peer[b"w1"]
    assert [type(m) for m in w1] == [p.Deliver, p.Error, p.Deliver]
    assert [d.task.id for d in w1[0].deliveries] == ["t0", "t2"]  # type: ignore[union-attr]
    assert [d.task.id for d in w1[2].deliveries] == ["t4"]  # type: ignore[union-attr]
    (w2,) = by_peer[b"w2"]
    assert [d.task.id for d in w2.deliveries] == ["t1", "t3", "t5"]  # type: ignore[union-attr]
    assert w2.deliveries[1].task.body == b"3"  # type: ignore[union-attr]


def test_confirms_are_not_merged_and_big_turns_are_bounded() -> None:
    """CONF (a control command) is never merged; a peer's 600 deliveries leave in messages
    of at most BATCH_ITEMS."""
    outbox = [_out(b"c", p.Confirm(("a",))), _out(b"c", p.Confirm(("b",)))]
    outbox += [_out(b"w", p.Deliver((p.Delivery(_task(i), "q"),))) for i in range(600)]
    merged = _coalesced(outbox)
    assert [p.decode(f[1:]) for f in merged if f[0] == b"c"] == [
        p.Confirm(("a",)),
        p.Confirm(("b",)),
    ]
    tasks = [p.decode(f[1:]) for f in merged if f[0] == b"w"]
    sizes = [len(m.deliveries) for m in tasks]  # type: ignore[union-attr]
    assert sum(sizes) == 600
    assert max(sizes) <= p.BATCH_ITEMS
    assert len(tasks) == -(-600 // p.BATCH_ITEMS)
