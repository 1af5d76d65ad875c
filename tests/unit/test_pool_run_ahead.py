"""The threads pool with run-ahead: a slot that dies drops what waited in it, reports lost once,
and takes nothing until the connection has read that report (ThreadPool.replaced), so that what
the connection hands it again runs once."""

from __future__ import annotations

import queue
import threading
from typing import Any

from celeriac.actors.pool import PoolWiring, ThreadPool
from celeriac.transport import protocol as p

WAIT = 30.0  # seconds; only a failure waits this long


def delivery(tid: str) -> p.Delivery:
    return p.Delivery(p.TaskMessage(tid, "t", b"[]", queue="celery"), "celery")


class Executor:
    """Runs a delivery by answering its id; ``die...`` waits for ``release``, then kills the
    slot's actor (a SystemExit escapes the executor, as no task's exception can)."""

    watchdog: Any = None

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        self.entered, self.release = entered, release

    def execute(self, d: p.Delivery) -> str:
        if d.task.id.startswith("die"):
            self.entered.set()
            assert self.release.wait(WAIT)
            raise SystemExit(3)
        return d.task.id


def test_a_dead_slot_drops_what_waited_and_takes_nothing_until_replaced() -> None:
    replies: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
    losts: queue.SimpleQueue[int] = queue.SimpleQueue()
    entered, release = threading.Event(), threading.Event()
    wiring = PoolWiring(
        make_executor=lambda: Executor(entered, release),  # type: ignore[arg-type,return-value]
        reply=lambda index, outcome: replies.put((index, outcome)),  # type: ignore[arg-type]
        lost=losts.put,
    )
    pool = ThreadPool(1, wiring)
    pool.start()
    try:
        assert pool.wait_ready(WAIT)
        pool.submit(0, delivery("die"))
        assert entered.wait(WAIT)
        pool.submit(0, delivery("behind"))  # waits in the slot's inbox
        release.set()
        assert losts.get(timeout=WAIT) == 0  # the supervisor restarted the slot
        pool.submit(0, delivery("early"))  # before the connection read the lost: dropped
        assert pool.replaced(0)
        assert not pool.replaced(0)  # one lost, one replacement
        pool.submit(0, delivery("after"))
        assert replies.get(timeout=WAIT) == (0, "after")  # neither "behind" nor "early" ran
        assert losts.empty()
    finally:
        pool.stop()


class Blocking:
    """Runs a delivery by answering (id, deliveries); ``long...`` first waits for ``release``."""

    watchdog: Any = None

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        self.entered, self.release = entered, release

    def execute(self, d: p.Delivery) -> tuple[str, int]:
        if d.task.id.startswith("long"):
            self.entered.set()
            assert self.release.wait(WAIT)
        return d.task.id, d.deliveries


def blocking_pool() -> tuple[
    ThreadPool, queue.SimpleQueue[tuple[int, Any]], threading.Event, threading.Event
]:
    """A one-slot pool whose tasks block until ``release`` (``entered`` says one began), and
    the queue its outcomes are replied to, as ``(slot, (task id, delivery count))``."""
    replies: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
    entered, release = threading.Event(), threading.Event()
    wiring = PoolWiring(
        make_executor=lambda: Blocking(entered, release),  # type: ignore[arg-type,return-value]
        reply=lambda index, outcome: replies.put((index, outcome)),  # type: ignore[arg-type]
        lost=lambda index: None,
    )
    return ThreadPool(1, wiring), replies, entered, release


def test_a_delivery_waiting_behind_a_long_task_is_recalled_and_never_runs_there() -> None:
    """recall() takes back what waits in a busy slot (True: it never runs there) and cannot take
    what the slot has begun (False); a tag handed again after a recall runs once, as handed."""
    pool, replies, entered, release = blocking_pool()
    assert pool.run_ahead >= 1
    pool.start()
    try:
        assert pool.wait_ready(WAIT)
        pool.submit(0, delivery("long"))
        assert entered.wait(WAIT)
        assert not pool.recall(0, "long")  # begun: it runs to its end
        pool.submit(0, delivery("behind"))  # waits in the slot's inbox
        pool.submit(0, delivery("again"))
        assert pool.recall(0, "behind")
        assert not pool.recall(0, "behind")  # once
        assert pool.recall(0, "again")
        redelivered = p.Delivery(p.TaskMessage("again", "t", b"[]", queue="celery"), "celery", 2)
        pool.submit(0, redelivered)  # the stale copy in the inbox must not run in its place
        release.set()
        assert replies.get(timeout=WAIT) == (0, ("long", 1))
        assert replies.get(timeout=WAIT) == (0, ("again", 2))
        pool.submit(0, delivery("last"))
        assert replies.get(timeout=WAIT) == (0, ("last", 1))  # "behind" never ran
        assert replies.empty()
    finally:
        pool.stop()


def test_deliveries_handed_at_once_run_in_order_and_one_recalled_among_them_never_runs() -> None:
    """hand() gives a slot several deliveries in one put (the connection's turn): they run in
    order, each under its own claim, so one recalled from the middle is skipped."""
    pool, replies, entered, release = blocking_pool()
    pool.start()
    try:
        assert pool.wait_ready(WAIT)
        pool.hand(0, [delivery("long"), delivery("a"), delivery("b"), delivery("c")])
        assert entered.wait(WAIT)
        assert pool.recall(0, "b")
        release.set()
        ran = [replies.get(timeout=WAIT)[1][0] for _ in range(3)]
        assert ran == ["long", "a", "c"]
        pool.hand(0, [delivery("last")])
        assert replies.get(timeout=WAIT) == (0, ("last", 1))  # "b" never ran
    finally:
        pool.stop()
