"""Task type actors: the pure gate (cap, rate, order) on a fake clock, and the actor itself."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac import App
from celeriac._clock import FakeClock
from celeriac._limits import TypeLimits
from celeriac._protocol import TaskMessage
from celeriac.actors.task_actor import Delivery
from celeriac.actors.tasktype import Finished, Offer, TaskTypeActor, TaskTypes
from celeriac.actors.timers import Timers
from celeriac.actors.typegate import TypeGate

WAIT = 10.0

#: An event for the gate: ("offer",), ("finish",) or ("advance", seconds).
events = st.lists(
    st.one_of(
        st.just(("offer", 0.0)),
        st.just(("finish", 0.0)),
        st.tuples(st.just("advance"), st.floats(min_value=0.0, max_value=1.0)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    events=events,
    rate=st.one_of(st.none(), st.floats(min_value=0.5, max_value=20.0)),
    cap=st.one_of(st.none(), st.integers(min_value=1, max_value=4)),
)
def test_gate_keeps_cap_rate_order_and_loses_nothing(
    events: list[tuple[str, float]], rate: float | None, cap: int | None
) -> None:
    """Under any events: running <= cap, releases FIFO and within rate*T + 1, nothing lost."""
    now = 0.0
    gate: TypeGate[int] = TypeGate(TypeLimits(rate, cap), now)
    offered, released, times = 0, [], []
    for kind, seconds in events:
        if kind == "offer":
            out = gate.offer(offered, now)
            offered += 1
        elif kind == "finish" and gate.running:
            out = gate.finished(now)
        else:
            now += seconds
            out = gate.release(now)
        released += out
        times += [now] * len(out)
        assert cap is None or gate.running <= cap
    assert released == list(range(len(released)))  # in arrival order, each once
    assert released + list(gate.waiting) == list(range(offered))  # nothing lost
    if rate is not None and times:
        span = times[-1] - times[0]
        assert len(times) <= rate * span + 1 + 1e-6
    assert gate.drain() == list(range(len(released), offered))
    assert not gate.waiting


def test_gate_wait_says_when_the_rate_lets_the_head_go() -> None:
    """wait() is the time to the next token, None when nothing waits or the cap holds it."""
    gate: TypeGate[str] = TypeGate(TypeLimits(rate=2.0, max_concurrency=1), 0.0)
    assert gate.wait(0.0) is None
    assert gate.offer("a", 0.0) == ["a"]
    assert gate.offer("b", 0.0) == []
    assert gate.wait(0.0) is None  # "b" waits for the cap, not for a token
    assert gate.finished(0.1) == []  # the cap is free, the token is not
    assert gate.wait(0.1) == pytest.approx(0.4)
    assert gate.release(0.5) == ["b"]


class Scheduled:
    """A schedule() that records timers instead of starting threads; the test fires them."""

    def __init__(self) -> None:
        self.timers: queue.Queue[tuple[float, Callable[[], None]]] = queue.Queue()

    def __call__(self, delay: float, callback: Callable[[], None]) -> Callable[[], None]:
        self.timers.put((delay, callback))
        return lambda: None


def delivery(n: int, name: str = "t.limited") -> Delivery:
    """A delivery of task ``name`` with tag ``t<n>``."""
    return Delivery(TaskMessage(f"id{n}", name), "celery", tag=f"t{n}")


@pytest.fixture
def released() -> queue.Queue[Delivery]:
    """Where the actor's releases land."""
    return queue.Queue()


@pytest.fixture
def actor(
    released: queue.Queue[Delivery],
) -> Iterator[tuple[pykka.ActorRef[Any], FakeClock, Scheduled]]:
    """A 1/s actor capped at 2, on a fake clock and a recording scheduler."""
    clock, scheduled = FakeClock(), Scheduled()
    ref = TaskTypeActor.start(
        "t.limited",
        TypeLimits(rate=1.0, max_concurrency=2),
        released.put,
        clock=clock,
        schedule=scheduled,
    )
    yield ref, clock, scheduled
    ref.stop()


def test_actor_releases_by_rate_through_its_timer(
    actor: tuple[pykka.ActorRef[Any], FakeClock, Scheduled], released: queue.Queue[Delivery]
) -> None:
    """The first delivery goes at once; the next when the timer, set for 1 s, fires."""
    ref, clock, scheduled = actor
    ref.tell(Offer(delivery(1)))
    ref.tell(Offer(delivery(2)))
    assert released.get(timeout=WAIT).tag == "t1"
    delay, fire = scheduled.timers.get(timeout=WAIT)
    assert delay == pytest.approx(1.0)
    assert released.empty()
    clock.advance(delay)
    fire()
    assert released.get(timeout=WAIT).tag == "t2"


def test_actor_holds_the_cap_until_told_finished(
    actor: tuple[pykka.ActorRef[Any], FakeClock, Scheduled], released: queue.Queue[Delivery]
) -> None:
    """With two running (the cap), a third is released only after a Finished."""
    ref, clock, _ = actor
    for n in range(2):
        ref.tell(Offer(delivery(n)))
        assert released.get(timeout=WAIT).tag == f"t{n}"
        clock.advance(1.0)  # a token each time: only the cap can hold the next back
    ref.ask(Offer(delivery(2)), timeout=WAIT)  # ask: handled when it returns
    assert released.empty()
    ref.tell(Finished())
    assert released.get(timeout=WAIT).tag == "t2"
    stats = ref.proxy().statistics().get(timeout=WAIT)
    assert stats == {
        "rate_per_s": 1.0,
        "max_concurrency": 2,
        "offered": 3,
        "released": 3,
        "waiting": 0,
        "running": 2,
    }


def test_task_types_start_actors_only_for_limited_types(released: queue.Queue[Delivery]) -> None:
    """A type without rate or cap is not gated: offer() says run it now."""
    app = App("types", environ={})

    @app.task(name="t.limited", max_concurrency=1)
    def limited() -> None: ...

    @app.task(name="t.free")
    def free() -> None: ...

    types = TaskTypes.start(app.tasks, app.conf.freeze(), released.put)
    try:
        assert types.gated("t.limited")
        assert not types.gated("t.free")
        assert not types.offer(delivery(1, "t.free"))
        assert types.offer(delivery(2))
        assert released.get(timeout=WAIT).tag == "t2"
        assert types.statistics()["t.limited"]["running"] == 1
        assert list(types.statistics()) == ["t.limited"]
    finally:
        types.stop()
    assert not types.gated("t.limited")


def test_a_dead_type_actor_lets_its_deliveries_run_unlimited(
    released: queue.Queue[Delivery],
) -> None:
    """If a type's actor were gone, offer() says run it (and logs) instead of crashing."""
    ref = TaskTypeActor.start(
        "t.limited", TypeLimits(max_concurrency=1), released.put, schedule=Scheduled()
    )
    types = TaskTypes({"t.limited": ref})
    ref.stop()
    assert not types.offer(delivery(1))
    assert not types.gated("t.limited")
    types.finished(delivery(1))  # no actor: nothing to tell, no error
    assert released.empty()


def test_timers_fire_in_due_order_and_cancelled_ones_never() -> None:
    """One thread runs due callbacks earliest first; a cancelled timer does not fire."""
    timers, fired = Timers(), queue.Queue[str]()
    try:
        timers.schedule(0.05, lambda: fired.put("late"))
        with timers._cond:  # (reentrant) the timer thread cannot look before the cancel
            cancel = timers.schedule(0.0, lambda: fired.put("cancelled"))
            cancel()
        timers.schedule(0.0, lambda: fired.put("early"))
        assert [fired.get(timeout=WAIT), fired.get(timeout=WAIT)] == ["early", "late"]
        assert fired.empty()
    finally:
        timers.stop()
