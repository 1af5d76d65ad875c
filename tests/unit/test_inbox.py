"""The worker's inbox (runtime/inbox.py): one queue for every thread, a doorbell rung only when
the queue was empty. What must hold: no message is ever stranded (queued without a ring the
connection has yet to read), each thread's order is kept, and the order of the appends holds
across threads."""

from __future__ import annotations

import threading

import pytest
import zmq

from celeriac.runtime.inbox import Inbox
from celeriac.transport import protocol as p

#: Long enough never to pass on a busy machine unless a message is stranded.
STRANDED = 10_000  # ms


def _poller(inbox: Inbox) -> zmq.Poller:
    """Polls the doorbell as the connection thread does (beside its socket)."""
    poller = zmq.Poller()
    poller.register(inbox.fd, zmq.POLLIN)
    return poller


def _taken(inbox: Inbox, *, all_at_once: bool) -> list[list[bytes]]:
    """Take to the end, one by one or as the connection does (``take_all`` until empty)."""
    if not all_at_once:
        return list(iter(inbox.take, None))
    out: list[list[bytes]] = []
    while batch := inbox.take_all():
        out += batch
    return out


@pytest.mark.parametrize("all_at_once", [False, True])
def test_every_message_is_rung_for_and_each_thread_keeps_its_order(all_at_once: bool) -> None:
    inbox = Inbox()
    threads, each = 4, 3000
    start = threading.Barrier(threads)

    def produce(who: int) -> None:
        start.wait()
        for i in range(each):
            inbox.put([who.to_bytes(1, "big"), i.to_bytes(4, "big")])

    workers = [threading.Thread(target=produce, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    seen: dict[int, list[int]] = {w: [] for w in range(threads)}
    poller = _poller(inbox)
    got = 0
    try:
        while got < threads * each:
            # The connection's loop: sleep until rung, read the rings, take to the end.
            assert poller.poll(STRANDED), f"stranded after {got} messages: no ring came"
            inbox.rung()
            for frames in _taken(inbox, all_at_once=all_at_once):
                seen[frames[0][0]].append(int.from_bytes(frames[1], "big"))
                got += 1
    finally:
        for w in workers:
            w.join()
    assert all(order == list(range(each)) for order in seen.values())
    assert inbox.take() is None
    assert not inbox.take_all()


def test_the_order_of_the_appends_holds_across_threads() -> None:
    """What a LOST reported by the supervisor's thread relies on: a slot's outcome queued
    before it is taken before it."""
    inbox = Inbox()

    def slot() -> None:
        inbox.put([b"\x00\x01", b"DONE"])

    first = threading.Thread(target=slot)
    first.start()
    first.join()
    inbox.put([b"\x00\x01", b"LOST"])  # this thread, after the other one's append
    assert _poller(inbox).poll(STRANDED)
    inbox.rung()
    assert inbox.take() == [b"\x00\x01", b"DONE"]
    assert inbox.take() == [b"\x00\x01", b"LOST"]
    assert inbox.take() is None
    assert not _poller(inbox).poll(0), "the doorbell was cleared"
    inbox.put([b"\x00\x02", b"DONE"])
    inbox.put([b"\x00\x02", b"LOST"])
    inbox.rung()
    assert list(inbox.take_all()) == [[b"\x00\x02", b"DONE"], [b"\x00\x02", b"LOST"]]
    assert inbox.empty()
    inbox.put([b"", b"SEND"])  # the queue was taken whole: this put rings again
    assert _poller(inbox).poll(STRANDED)


def test_an_outcome_the_connection_sends_directly_is_not_queued() -> None:
    """``Inbox.direct`` (set by the connection's loop) takes a slot's encoded outcome; when it
    declines (the loop is busy, or messages wait before it) the outcome is queued and rung."""
    inbox = Inbox()
    taken: list[tuple[int, list[bytes]]] = []
    accept = [True]

    def direct(slot: int, frames: list[bytes]) -> bool:
        if accept[0]:
            taken.append((slot, frames))
        return accept[0]

    inbox.direct = direct
    inbox.outcome(3, p.encode(p.Credit(1)))
    assert taken == [(3, p.encode(p.Credit(1)))]
    assert inbox.empty()
    assert not _poller(inbox).poll(0)
    accept[0] = False
    inbox.outcome(4, p.encode(p.Credit(2)))
    assert _poller(inbox).poll(STRANDED)
    inbox.rung()
    assert inbox.take() == (4, p.encode(p.Credit(2)))
