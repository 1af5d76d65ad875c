"""The worker session with run-ahead (a busy slot holds one more delivery waiting in it): what
each slot runs, what waits in it, the HELLO's list, a lost slot and the drain stay exact.

The model of the real slots here is what a ThreadPool does: a slot runs what it was handed
(:class:`Run`), in order, one at a time; a dead slot's actor drops whatever it held.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from celeriac.transport import protocol as p
from celeriac.transport.session import (
    Effect,
    Recall,
    Run,
    Send,
    Starting,
    Stop,
    WorkerConfig,
    WorkerSession,
)

T0 = 1000.0


def session(
    *,
    slots: int = 2,
    prefetch: int = 8,
    heartbeat: float = 1.0,
    giveback: float = 2.0,
    run_ahead: int = 1,
    **options: Any,
) -> WorkerSession:
    config = WorkerConfig(
        node="w@host",
        endpoint="tcp://hub:5555",
        queues=("celery",),
        slots=slots,
        prefetch=prefetch,
        heartbeat=heartbeat,
        giveback=giveback,
        run_ahead=run_ahead,
        **options,
    )
    return WorkerSession(config, T0)


def delivery(tid: str) -> p.Delivery:
    return p.Delivery(p.TaskMessage(tid, "t", b"[]", queue="celery"), "celery")


def done(tid: str) -> p.Done:
    return p.Done((p.ResultMessage(tid, "SUCCESS", b"1", credit=1),))


def sent(effects: list[Effect]) -> list[p.Message]:
    return [e.message for e in effects if isinstance(e, Send)]


def runs(effects: list[Effect]) -> list[tuple[int, str]]:
    return [(e.slot, e.delivery.task.id) for e in effects if isinstance(e, Run)]


def starts(effects: list[Effect]) -> list[tuple[int, str]]:
    return [(e.slot, e.delivery.task.id) for e in effects if isinstance(e, Starting)]


def started(effects: list[Effect]) -> list[str]:
    return [r.id for m in sent(effects) if isinstance(m, p.Start) for r in m.started]


def rejected(effects: list[Effect]) -> list[str]:
    return [r.id for m in sent(effects) if isinstance(m, p.Reject) for r in m.rejections]


def test_a_busy_slot_is_handed_one_more_which_starts_when_the_one_before_ends() -> None:
    s = session(track_started=True)
    effects = s.handle(p.Deliver(tuple(delivery(t) for t in "abcde")), T0)
    assert runs(effects) == [(1, "a"), (0, "b"), (1, "c"), (0, "d")]
    assert starts(effects) == [(1, "a"), (0, "b")]
    assert started(effects) == ["a", "b"]  # c and d wait in their slots: not started yet
    assert [d.task.id for d in s.buffer] == ["e"]
    after = s.outcome(1, done("a"), T0)
    assert sent(after)[0] == done("a")
    assert starts(after) == [(1, "c")]
    assert started(after) == ["c"]
    assert runs(after) == [(1, "e")]  # the buffered one goes to wait in the slot
    assert s.busy[1].task.id == "c"
    assert [d.task.id for d in s.queued[1]] == ["e"]


def test_the_hello_lists_what_waits_in_the_slots_and_counts_it() -> None:
    s = session(prefetch=6)
    s.handle(p.Deliver(tuple(delivery(t) for t in "abcde")), T0)
    (hello,) = sent(s.connect(T0))
    assert isinstance(hello, p.Hello)
    assert sorted(hello.inflight) == ["a", "b", "c", "d", "e"]
    assert hello.credit == 1


def test_a_lost_slot_gives_back_what_it_ran_and_hands_the_rest_to_its_successor() -> None:
    s = session()
    s.handle(p.Deliver(tuple(delivery(t) for t in "abcd")), T0)  # slot 1: a, c; slot 0: b, d
    effects = s.lost(1, T0)
    assert rejected(effects) == ["a"]
    assert runs(effects) == [(1, "c")]
    assert starts(effects) == [(1, "c")]
    assert s.busy[1].task.id == "c"
    assert not s.queued[1]


def test_a_slot_lost_while_draining_gives_back_both() -> None:
    s = session()
    s.handle(p.Deliver(tuple(delivery(t) for t in "abcd")), T0)
    s.shutdown(T0, timeout=10)
    effects = s.lost(1, T0)
    assert rejected(effects) == ["a", "c"]
    assert not runs(effects)
    assert 1 in s.free


def test_a_warm_shutdown_lets_what_its_slot_had_begun_run_then_stops() -> None:
    """The shutdown recalls b, which its slot had begun (not withdrawn): b runs, then Stop."""
    s = session(slots=1)
    s.handle(p.Deliver(tuple(delivery(t) for t in "abc")), T0)  # a runs, b waits, c buffered
    effects = s.shutdown(T0, timeout=10)
    assert rejected(effects) == ["c"]
    waiting = [(i, d.task.id) for e in effects if isinstance(e, Recall) for i, d in e.waiting]
    assert waiting == [(0, "b")]
    assert s.recalled([]) == []
    s.outcome(0, done("a"), T0)
    assert s.busy[0].task.id == "b"
    assert not [e for e in s.tick(T0 + 1) if isinstance(e, Stop)]
    s.outcome(0, done("b"), T0)
    assert [e for e in s.tick(T0 + 1) if isinstance(e, Stop)] == [Stop(cold=False)]


# -- the property: the session's view of each slot is the slot's own ----------------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(1, 4)),
        st.tuples(st.just("finish"), st.integers(0, 2)),
        st.tuples(st.just("lose"), st.integers(0, 2)),
    ),
    max_size=40,
)


@given(steps)
def test_each_slot_runs_what_the_session_thinks_in_order_and_nothing_is_lost(
    events: list[tuple[str, int]],
) -> None:
    slots = 3
    s = session(slots=slots, prefetch=8)
    real: list[deque[str]] = [deque() for _ in range(slots)]  # what each slot's actor holds
    finished: list[str] = []
    given_back: list[str] = []
    handed: list[str] = []
    received = 0

    def perform(effects: list[Effect]) -> None:
        for slot, tid in runs(effects):
            real[slot].append(tid)
            handed.append(tid)
        given_back.extend(rejected(effects))

    for kind, n in events:
        if kind == "deliver":
            credit = 8 - len(s.inflight())
            batch = tuple(delivery(f"t{received + i}") for i in range(min(n, credit)))
            received += len(batch)
            perform(s.handle(p.Deliver(batch), T0))
        elif kind == "finish" and real[n]:
            tid = real[n].popleft()
            finished.append(tid)
            perform(s.outcome(n, done(tid), T0))
        elif kind == "lose" and real[n]:
            real[n].clear()  # the dead actor's inbox goes with it
            perform(s.lost(n, T0))
        for slot in range(slots):
            running = s.busy.get(slot)
            view = [] if running is None else [running.task.id]
            assert [*view, *(d.task.id for d in s.queued[slot])] == list(real[slot])
            assert len(s.queued[slot]) <= 1
        if s.buffer:  # nothing waits in the buffer while a slot has room
            assert not s.free
            assert all(len(q) == 1 for q in s.queued.values())
    assert len(finished) == len(set(finished))  # each ran to its end once
    held = {d.task.id for d in s.handed()} | {d.task.id for d in s.buffer}
    everything = {f"t{i}" for i in range(received)}
    assert set(finished) | set(given_back) | held == everything  # nothing lost
    assert not set(finished) & (set(given_back) | held)
    assert not set(given_back) & held
