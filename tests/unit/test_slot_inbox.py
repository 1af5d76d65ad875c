"""A slot's inbox (actors/slot_inbox.py): a put wakes a sleeping reader; a push that finds it
asleep says so and leaves the wake to its caller; nothing queued is ever stranded."""

from __future__ import annotations

import queue
import threading

from celeriac.actors.pool import PoolWiring, ThreadPool
from celeriac.actors.slot_inbox import SlotInbox
from celeriac.transport import protocol as p

WAIT = 30.0  # seconds; only a failure waits this long


def reader(inbox: SlotInbox, out: queue.SimpleQueue[object], count: int) -> threading.Thread:
    def run() -> None:
        for _ in range(count):
            out.put(inbox.get())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_asleep(inbox: SlotInbox) -> None:
    """Until the reader has said it sleeps (its flag; the descriptor read follows)."""
    never = threading.Event()
    for _ in range(int(WAIT * 1000)):  # bounded: a reader that never sleeps fails the test
        if inbox._asleep:
            return
        never.wait(0.001)
    raise AssertionError("the reader never went to sleep")


def test_items_come_out_in_order_and_put_wakes_the_reader() -> None:
    inbox = SlotInbox()
    inbox.put("a")
    inbox.put("b")
    assert not inbox.empty()
    out: queue.SimpleQueue[object] = queue.SimpleQueue()
    thread = reader(inbox, out, 3)
    assert out.get(timeout=WAIT) == "a"
    assert out.get(timeout=WAIT) == "b"
    wait_asleep(inbox)
    inbox.put("c")  # the reader sleeps on the descriptor: this put wakes it
    assert out.get(timeout=WAIT) == "c"
    thread.join(WAIT)
    assert inbox.empty()


def test_a_push_to_a_sleeping_reader_asks_for_one_wake_and_only_then_is_read() -> None:
    inbox = SlotInbox()
    assert not inbox.push("early")  # nobody sleeps: nothing to wake
    out: queue.SimpleQueue[object] = queue.SimpleQueue()
    thread = reader(inbox, out, 2)
    assert out.get(timeout=WAIT) == "early"
    wait_asleep(inbox)
    assert inbox.push("x")  # asleep: the caller must wake it
    assert not inbox.push("y")  # the wake is owed already: no second one
    try:
        out.get(timeout=0.05)
        woke = True
    except queue.Empty:
        woke = False
    assert not woke  # no wake yet: the reader still sleeps
    inbox.wake()
    assert out.get(timeout=WAIT) == "x"
    thread.join(WAIT)
    assert inbox.get() == "y"


def test_many_writers_against_one_reader_strand_nothing() -> None:
    inbox = SlotInbox()
    out: queue.SimpleQueue[object] = queue.SimpleQueue()
    writers, each = 4, 2000
    thread = reader(inbox, out, writers * each)

    def write(w: int) -> None:
        for i in range(each):
            if i % 2:
                inbox.put((w, i))
            elif inbox.push((w, i)):
                inbox.wake()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    got = [out.get(timeout=WAIT) for _ in range(writers * each)]
    thread.join(WAIT)
    for w in range(writers):  # every item, each writer's in its order
        assert [i for x, i in got if x == w] == list(range(each))  # type: ignore[misc]


def test_the_pool_leaves_the_wake_of_a_sleeping_slot_to_wake_handed() -> None:
    replies: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()

    class Executor:
        watchdog = None

        def execute(self, d: p.Delivery) -> str:
            return d.task.id

    pool = ThreadPool(
        1,
        PoolWiring(
            make_executor=Executor,  # type: ignore[arg-type]
            reply=lambda index, outcome: replies.put((index, outcome)),  # type: ignore[arg-type]
            lost=lambda index: None,
        ),
    )
    pool.start()
    try:
        assert pool.wait_ready(WAIT)
        pool.hand(0, [p.Delivery(p.TaskMessage("t1", "t", b"[]", queue="celery"), "celery")])
        assert replies.get(timeout=WAIT) == (0, "t1")
        ref = pool._refs[0]
        assert ref is not None
        wait_asleep(ref.actor_inbox)  # type: ignore[arg-type]
        d2 = p.Delivery(p.TaskMessage("t2", "t", b"[]", queue="celery"), "celery")
        pool.hand(0, [d2], wake=False)
        try:
            replies.get(timeout=0.05)
            ran = True
        except queue.Empty:
            ran = False
        assert not ran  # left asleep until woken
        pool.wake_handed()
        assert replies.get(timeout=WAIT) == (0, "t2")
    finally:
        pool.stop()
