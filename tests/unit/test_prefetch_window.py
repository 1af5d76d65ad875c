"""The prefetch window (transport/session/window.py) and how the worker session follows it:
quick tasks widen it (the extra credit goes out as CRED, run-ahead deepens), slow ones bring it
back to the floor (paid from withheld credit, then by outcomes returning none), and a HELLO
always announces the window minus what the worker holds. Pure code, a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from celeriac.actors.pool import ThreadPool
from celeriac.transport import protocol as p
from celeriac.transport.session import WorkerConfig, WorkerSession
from celeriac.transport.session.window import MOST_PER_SLOT, PERIOD, PrefetchWindow

from .test_worker_session_run_ahead import T0, delivery, done, sent


def session(prefetch: int = 4, window: float = 0.01, run_ahead: int = 16) -> WorkerSession:
    config = WorkerConfig(
        node="w@host",
        endpoint="tcp://hub:5555",
        queues=("celery",),
        slots=2,
        prefetch=prefetch,
        heartbeat=100.0,
        giveback=100.0,
        run_ahead=run_ahead,
        prefetch_window=window,
    )
    return WorkerSession(config, T0)


def test_quick_tasks_widen_the_window_to_its_cap() -> None:
    w = PrefetchWindow(slots=2, floor=4, seconds=0.01, now=T0)
    assert w.resize(T0 + PERIOD / 2, (0.002, 100)) == 0  # not a period yet
    assert w.resize(T0 + PERIOD, (0.002, 100)) == 2 * MOST_PER_SLOT - 4
    assert w.size == 2 * MOST_PER_SLOT


def test_slow_tasks_keep_the_floor_and_middling_ones_get_seconds_of_work() -> None:
    w = PrefetchWindow(slots=2, floor=4, seconds=0.01, now=T0)
    assert w.resize(T0 + PERIOD, (1.0, 10)) == 0  # 100 ms a task: the floor
    assert w.size == 4
    w = PrefetchWindow(slots=2, floor=4, seconds=0.01, now=T0)
    w.resize(T0 + PERIOD, (0.1, 100))  # 1 ms a task: 10 ms of work is 10 a slot
    assert w.size == 20


def test_window_zero_is_celerys_fixed_prefetch() -> None:
    w = PrefetchWindow(slots=2, floor=4, seconds=0.0, now=T0)
    assert w.resize(T0 + 10, (0.001, 1000)) == 0
    assert w.size == 4


def test_no_change_for_less_than_a_quarter() -> None:
    w = PrefetchWindow(slots=1, floor=1, seconds=0.01, now=T0)
    w.resize(T0 + PERIOD, (0.1, 100))  # 1 ms: 10
    assert w.size == 10
    assert w.resize(T0 + 2 * PERIOD, (0.1 + 0.09, 200)) == 0  # 0.9 ms asks 10 -> 10
    assert w.resize(T0 + 3 * PERIOD, (0.19 + 0.08, 300)) == 0  # average 0.875 ms: 11, within


@given(
    st.lists(
        st.tuples(st.floats(0.0, 0.2), st.integers(0, 500)),
        max_size=40,
    ),
    st.integers(1, 8),
    st.integers(1, 300),
)
def test_the_window_stays_within_bounds_and_changes_add_up(
    periods: list[tuple[float, int]], slots: int, floor: int
) -> None:
    w = PrefetchWindow(slots=slots, floor=floor, seconds=0.01, now=T0)
    seconds, count, total = 0.0, 0, 0
    for i, (busy, ran) in enumerate(periods, start=1):
        seconds, count = seconds + busy, count + ran
        total += w.resize(T0 + i * PERIOD, (seconds, count))
        assert floor <= w.size <= max(floor, MOST_PER_SLOT * slots)
    assert total == w.size - floor


def test_session_sends_the_wider_window_as_credit_and_runs_further_ahead() -> None:
    s = session()
    assert s.run_ahead == 1  # 4 over 2 slots: one waits behind each running task
    effects = s.tick(T0 + PERIOD, worked=(0.002, 100))
    assert [m for m in sent(effects) if isinstance(m, p.Credit)] == [p.Credit(252)]
    assert s.run_ahead == 16
    hello = next(m for m in sent(s.connect(T0 + 1)) if isinstance(m, p.Hello))
    assert hello.credit == 256


def test_session_narrows_from_withheld_credit_then_from_outcomes() -> None:
    s = session()
    s.tick(T0 + PERIOD, worked=(0.002, 100))  # 256
    s.withheld = 200  # as after a give-back behind a long task
    effects = s.tick(T0 + 2 * PERIOD, worked=(0.002 + 100.0, 200))  # 1 s a task: the floor
    assert not [m for m in sent(effects) if isinstance(m, p.Credit)]
    assert (s.window.size, s.withheld, s.gated.debt) == (4, 0, 52)
    assert s.run_ahead == 1
    s.handle(p.Deliver((delivery("a"),)), T0 + 3)
    slot = next(i for i, d in s.busy.items() if d.task.id == "a")
    out = sent(s.outcome(slot, done("a"), T0 + 4))
    assert [r.credit for m in out if isinstance(m, p.Done) for r in m.results] == [0]
    assert s.gated.debt == 51


def test_no_resizing_while_draining_or_without_timings() -> None:
    s = session()
    s.tick(T0 + PERIOD)
    assert s.window.size == 4  # the pool does not time its tasks: the floor
    s.shutdown(T0 + PERIOD, timeout=10.0)
    s.tick(T0 + 2 * PERIOD, worked=(0.002, 100))
    assert s.window.size == 4


def test_quick_tasks_wait_64_deep_in_each_threads_slot() -> None:
    """With the threads pool's run-ahead, a quick workload's full window (256 over 2 slots)
    lets each busy slot hold 64 waiting deliveries: it runs dry less often while the
    connection waits for the GIL, and TASK/DONE carry more (issue 18)."""
    s = session(run_ahead=ThreadPool.run_ahead)
    s.tick(T0 + PERIOD, worked=(0.002, 100))
    assert s.window.size == 256
    assert s.run_ahead == 64
