"""Rate limits (Celery's syntax), the token bucket on a fake clock, annotations, precedence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac import App
from celeriac._limits import TokenBucket, TypeLimits, parse_rate, type_limits
from celeriac.exceptions import ImproperlyConfigured


@pytest.mark.parametrize(
    ("value", "per_second"),
    [
        ("10/s", 10.0),
        ("100/m", 100 / 60),
        ("1000/h", 1000 / 3600),
        ("7", 7.0),
        ("5/", 5.0),  # an empty unit is per second, as in Celery
        (3, 3.0),
        (0.5, 0.5),
        (" 4 / s ", 4.0),
    ],
)
def test_parse_rate_reads_celerys_syntax(value: Any, per_second: float) -> None:
    """N/s, N/m, N/h and bare numbers (per second) give tasks per second."""
    assert parse_rate(value) == pytest.approx(per_second)


@pytest.mark.parametrize("value", [None, 0, "", "0/s", "0"])
def test_parse_rate_zero_or_none_means_no_limit(value: Any) -> None:
    """None, 0, "" and "0/s" mean no rate limit, as in Celery."""
    assert parse_rate(value) is None


@pytest.mark.parametrize("value", ["10/d", "ten/s", "-1/s", -2, float("inf"), True, [5]])
def test_parse_rate_refuses_malformed_values(value: Any) -> None:
    """A unit other than s/m/h, a non-number, a negative or infinite rate is refused."""
    with pytest.raises(ImproperlyConfigured):
        parse_rate(value)


def test_bucket_starts_with_one_token_and_refills_at_the_rate() -> None:
    """Celery's bucket: one token at first (burst 1), then one every 1/rate seconds."""
    bucket = TokenBucket(5.0, now=100.0)
    assert bucket.take(100.0)
    assert not bucket.take(100.0)
    assert bucket.wait(100.0) == pytest.approx(0.2)
    assert not bucket.take(100.19)
    assert bucket.take(100.2)
    assert bucket.wait(110.0) == 0.0  # idle for long: still only one token
    assert bucket.take(110.0)
    assert not bucket.take(110.0)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.1, max_value=1000.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=200),
)
def test_bucket_never_lets_more_than_rate_times_window_plus_burst(
    rate: float, gaps: list[float]
) -> None:
    """Whatever the times of the attempts, takes in any window T number at most rate*T + 1."""
    bucket = TokenBucket(rate, now=0.0)
    now, taken = 0.0, []
    for gap in gaps:
        now += gap
        if bucket.take(now):
            taken.append(now)
    for i, start in enumerate(taken):
        for end in taken[i:]:
            count = sum(1 for t in taken if start <= t <= end)
            assert count <= rate * (end - start) + 1 + 1e-6


@settings(max_examples=100, deadline=None)
@given(rate=st.floats(min_value=0.1, max_value=100.0), n=st.integers(min_value=1, max_value=50))
def test_waiting_as_told_always_yields_a_token(rate: float, n: int) -> None:
    """Taking at now + wait(now), repeatedly, always succeeds: a timer set so is never early."""
    bucket = TokenBucket(rate, now=0.0)
    now = 0.0
    for _ in range(n):
        now += bucket.wait(now)
        assert bucket.take(now)
    assert now == pytest.approx((n - 1) / rate)


def app_with(**conf: Any) -> App:
    """A fresh app with these settings (no hub is contacted)."""
    return App("lim", environ={}, **conf)


def test_task_option_then_default_setting() -> None:
    """A task's rate_limit wins over task_default_rate_limit, which fills the gap."""
    app = app_with(task_default_rate_limit="1/m")

    @app.task(name="lim.own", rate_limit="10/s", max_concurrency=2)
    def own() -> None: ...

    @app.task(name="lim.bare")
    def bare() -> None: ...

    assert type_limits(own, app.conf) == TypeLimits(10.0, 2)
    assert type_limits(bare, app.conf) == TypeLimits(pytest.approx(1 / 60), None)
    assert not type_limits(bare, app_with().conf).limited


def test_annotations_win_and_a_tasks_own_name_wins_over_star() -> None:
    """task_annotations beat the task's option; an entry for the name beats '*'."""
    app = app_with(
        task_annotations={
            "lim.a": {"rate_limit": "3/s"},
            "*": {"rate_limit": "1/s", "max_concurrency": 4},
        }
    )

    @app.task(name="lim.a", rate_limit="10/s")
    def a() -> None: ...

    @app.task(name="lim.b", rate_limit="10/s")
    def b() -> None: ...

    assert type_limits(a, app.conf) == TypeLimits(3.0, None)
    assert type_limits(b, app.conf) == TypeLimits(1.0, 4)


def test_annotation_objects_and_lists() -> None:
    """A list is searched in order; objects answer through annotate(task)."""

    class OnlyB:
        def annotate(self, task: Any) -> dict[str, Any] | None:
            return {"max_concurrency": 1} if task.name == "lim.b" else None

    app = app_with(task_annotations=[OnlyB(), {"lim.a": {"rate_limit": 2}}])

    @app.task(name="lim.a")
    def a() -> None: ...

    @app.task(name="lim.b")
    def b() -> None: ...

    assert type_limits(a, app.conf) == TypeLimits(2.0, None)
    assert type_limits(b, app.conf) == TypeLimits(None, 1)


def test_disable_rate_limits_keeps_caps() -> None:
    """worker_disable_rate_limits drops every rate limit, not max_concurrency."""
    app = app_with(worker_disable_rate_limits=True, task_default_rate_limit="5/s")

    @app.task(name="lim.c", rate_limit="1/s", max_concurrency=3)
    def c() -> None: ...

    assert type_limits(c, app.conf) == TypeLimits(None, 3)


def test_class_based_task_attributes() -> None:
    """rate_limit and max_concurrency as class attributes of a class-based task count."""
    app = app_with()

    class Thumb(app.Task):  # type: ignore[name-defined,misc]
        name = "lim.thumb"
        rate_limit = "30/m"
        max_concurrency = 1

        def run(self) -> None: ...

    assert type_limits(app.tasks["lim.thumb"], app.conf) == TypeLimits(0.5, 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_limit": "5/day"}, "N/s, N/m or N/h"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": "2"}, "max_concurrency"),
    ],
)
def test_bad_task_options_are_refused_at_decoration(options: dict[str, Any], message: str) -> None:
    """A malformed rate_limit or max_concurrency fails when the task is declared."""
    app = app_with()
    with pytest.raises(ImproperlyConfigured, match=message):
        app.task(name="lim.bad", **options)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"lim.a": {"time_limit": 5}}, "annotates"),
        ({"lim.a": {"rate_limit": "x"}}, "N/s"),
        ({"lim.a": "10/s"}, "must be a dict"),
        ([object()], "annotate"),
    ],
)
def test_bad_annotations_are_refused_when_set(value: Any, message: str) -> None:
    """task_annotations is checked when set: only rate_limit/max_concurrency, well formed."""
    app = app_with()
    with pytest.raises(ImproperlyConfigured, match=message):
        app.conf.task_annotations = value


def test_settings_from_the_environment() -> None:
    """CELERIAC_TASK_DEFAULT_RATE_LIMIT and CELERIAC_TASK_ANNOTATIONS (JSON) are read."""
    app = App(
        "env",
        environ={
            "CELERIAC_TASK_DEFAULT_RATE_LIMIT": "100/m",
            "CELERIAC_TASK_ANNOTATIONS": '{"env.t": {"max_concurrency": 2}}',
        },
    )

    @app.task(name="env.t")
    def t() -> None: ...

    assert type_limits(t, app.conf) == TypeLimits(pytest.approx(100 / 60), 2)
