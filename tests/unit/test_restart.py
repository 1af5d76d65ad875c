"""The one restart policy: intensity in a sliding window, per-key jittered backoff (fake clock)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac._clock import FakeClock
from celeriac.actors.restart import (
    Escalate,
    Restart,
    RestartPolicy,
    RestartTracker,
    backoff_delay,
)
from celeriac.exceptions import ImproperlyConfigured


def tracker(clock: FakeClock, **options: object) -> RestartTracker:
    """A tracker on the fake clock with a seeded rng."""
    return RestartTracker(RestartPolicy(**options), clock=clock, rng=random.Random(7))  # type: ignore[arg-type]


def test_more_than_intensity_failures_in_the_period_escalate() -> None:
    """R failures in T seconds are restarted; failure R+1 within T escalates, naming the count."""
    clock = FakeClock()
    restarts = tracker(clock, intensity=3, period=10.0)
    for _ in range(3):
        assert isinstance(restarts.failed("a"), Restart)
        clock.advance(1.0)
    decision = restarts.failed("b")
    assert decision == Escalate(restarts=4, intensity=3, period=10.0)


def test_the_window_slides_and_old_failures_age_out() -> None:
    """A failure exactly one period old no longer counts: the window is (now - T, now]."""
    clock = FakeClock()
    restarts = tracker(clock, intensity=1, period=5.0)
    assert isinstance(restarts.failed(), Restart)
    clock.advance(5.0)
    assert isinstance(restarts.failed(), Restart)
    clock.advance(4.9)
    assert isinstance(restarts.failed(), Escalate)
    assert restarts.recent() == 2


def test_intensity_zero_escalates_at_the_first_failure() -> None:
    """intensity=0: nothing is ever restarted."""
    restarts = tracker(FakeClock(), intensity=0)
    assert isinstance(restarts.failed(), Escalate)


def test_failures_that_do_not_count_get_a_backoff_but_never_escalate() -> None:
    """counts=False (a prefork child that was ready) grows the backoff, not the intensity."""
    clock = FakeClock()
    restarts = tracker(clock, intensity=1, period=30.0, backoff=(1.0, 8.0))
    decisions = [restarts.failed("slot", counts=False) for _ in range(5)]
    assert all(isinstance(d, Restart) for d in decisions)
    assert [d.attempt for d in decisions if isinstance(d, Restart)] == [0, 1, 2, 3, 4]
    assert restarts.recent() == 0
    assert isinstance(restarts.failed("slot"), Restart)
    assert isinstance(restarts.failed("slot"), Escalate)


def test_backoff_grows_per_key_and_due_is_on_the_clock() -> None:
    """Each key has its own attempts; due = the failure's clock reading + delay."""
    clock = FakeClock(start=100.0)
    restarts = tracker(clock, intensity=10, period=60.0, backoff=(1.0, 100.0))
    first = restarts.failed("a")
    second = restarts.failed("a")
    other = restarts.failed("b")
    assert isinstance(first, Restart)
    assert isinstance(second, Restart)
    assert isinstance(other, Restart)
    assert (first.attempt, second.attempt, other.attempt) == (0, 1, 0)
    assert 0.5 <= first.delay <= 1.0
    assert 1.0 <= second.delay <= 2.0
    assert first.due == 100.0 + first.delay


def test_backoff_period_resets_attempts_separately_from_the_intensity() -> None:
    """A key's attempts age out after backoff_period even when the intensity window is longer."""
    clock = FakeClock()
    restarts = tracker(clock, intensity=10, period=30.0, backoff_period=10.0)
    restarts.failed("a")
    clock.advance(10.0)
    decision = restarts.failed("a")
    assert isinstance(decision, Restart)
    assert decision.attempt == 0
    assert restarts.recent() == 2


def test_forget_starts_a_key_backoff_afresh() -> None:
    """forget(key) resets that key's attempts (the prefork autoscaler reusing a slot)."""
    restarts = tracker(FakeClock(), intensity=10)
    restarts.failed("a")
    restarts.failed("a")
    restarts.forget("a")
    decision = restarts.failed("a")
    assert isinstance(decision, Restart)
    assert decision.attempt == 0


def test_bad_numbers_are_refused_with_every_problem_named() -> None:
    """A policy that cannot work is an ImproperlyConfigured error listing each problem."""
    with pytest.raises(ImproperlyConfigured, match="intensity >= 0") as info:
        RestartTracker(RestartPolicy(intensity=-1, backoff=(2.0, 1.0), backoff_period=0))
    assert "backoff must be" in str(info.value)
    assert "backoff_period" in str(info.value)


def test_backoff_delays_are_reproducible_with_a_seeded_rng() -> None:
    """The same seed gives the same delays: randomness is injected, never global."""
    delays = [backoff_delay(n, 0.05, 2.0, random.Random(3)) for n in range(8)]
    assert delays == [backoff_delay(n, 0.05, 2.0, random.Random(3)) for n in range(8)]


# -- properties --------------------------------------------------------------------------------

_failures = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=4.0, allow_nan=False),  # time since the last one
        st.sampled_from(["a", "b", "c"]),
        st.booleans(),  # counts towards the intensity
    ),
    max_size=60,
)


@pytest.mark.property
@given(
    failures=_failures,
    intensity=st.integers(min_value=0, max_value=5),
    period=st.floats(min_value=0.5, max_value=20.0, allow_nan=False),
)
def test_never_more_than_intensity_restarts_in_any_window(
    failures: list[tuple[float, str, bool]], intensity: int, period: float
) -> None:
    """Counted restarts granted in any window (t - T, t] never exceed R, whatever the pattern."""
    clock = FakeClock(start=0.0)
    restarts = tracker(clock, intensity=intensity, period=period)
    granted: list[float] = []
    for gap, key, counts in failures:
        clock.advance(gap)
        decision = restarts.failed(key, counts=counts)
        if isinstance(decision, Restart) and counts:
            granted.append(clock.monotonic())
    for t in granted:
        assert sum(1 for s in granted if t - period < s <= t) <= intensity


@pytest.mark.property
@given(failures=_failures, intensity=st.integers(min_value=0, max_value=5))
def test_escalates_exactly_when_the_window_holds_more_than_intensity(
    failures: list[tuple[float, str, bool]], intensity: int
) -> None:
    """The decision matches a brute-force count of counted failures in (now - T, now]."""
    period = 5.0
    clock = FakeClock(start=0.0)
    restarts = tracker(clock, intensity=intensity, period=period)
    stamps: list[float] = []
    for gap, key, counts in failures:
        clock.advance(gap)
        now = clock.monotonic()
        decision = restarts.failed(key, counts=counts)
        if counts:
            stamps.append(now)
        in_window = sum(1 for s in stamps if now - period < s <= now)
        assert isinstance(decision, Escalate) == (counts and in_window > intensity)


@pytest.mark.property
@given(
    attempt=st.integers(min_value=0, max_value=200),
    low=st.floats(min_value=0.0, max_value=5.0, allow_nan=False),
    extra=st.floats(min_value=0.0, max_value=50.0, allow_nan=False),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_is_jittered_within_half_to_full_base(
    attempt: int, low: float, extra: float, seed: int
) -> None:
    """delay is in [base/2, base] with base = min(max, min * 2**attempt): never above the cap."""
    high = low + extra
    delay = backoff_delay(attempt, low, high, random.Random(seed))
    base = min(high, low * 2.0 ** min(attempt, 64))
    assert base / 2.0 <= delay <= base <= high
