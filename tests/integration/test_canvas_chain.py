"""Chains, groups, callbacks and errbacks on a real hub and worker (the in-process test kit)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from celeriac import App, GroupResult, chain, chord, group, signature
from celeriac.exceptions import ChordError
from celeriac.testing import TestWorker

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


def _tasks(app: App) -> dict[str, Any]:
    @app.task(name="cv.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="cv.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task(name="cv.boom")
    def boom(*args: Any) -> None:
        raise ValueError("boom")

    @app.task(name="cv.ids", bind=True)
    def ids(self: Any, *args: Any) -> list[Any]:
        r = self.request
        return [r.id, r.parent_id, r.root_id, r.group]

    return {"add": add, "mul": mul, "boom": boom, "ids": ids}


def test_chain_passes_each_result_to_the_next_step(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """(add.s(2, 2) | mul.s(10) | add.s(1))() -> 41, and .parent walks back the steps."""
    t = _tasks(celeriac_app)
    result = (t["add"].s(2, 2) | t["mul"].s(10) | t["add"].s(1))()
    assert result.get(timeout=TIMEOUT) == 41
    assert result.parent is not None
    assert result.parent.get(timeout=TIMEOUT) == 40
    celeriac_worker.join(TIMEOUT)


def test_chain_of_fifty_steps(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """A chain of 50 add.s(1) steps after add.s(0, 0) ends with 50."""
    t = _tasks(celeriac_app)
    steps = [t["add"].s(0, 0)] + [t["add"].s(1) for _ in range(50)]
    assert chain(*steps).apply_async().get(timeout=TIMEOUT) == 50


def test_chain_of_one_step(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """A chain of a single step returns that step's result."""
    t = _tasks(celeriac_app)
    assert chain(t["add"].s(3, 4)).delay().get(timeout=TIMEOUT) == 7


def test_immutable_step_ignores_the_parent_result(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """.si() steps do not receive the previous result."""
    t = _tasks(celeriac_app)
    assert (t["add"].s(1, 1) | t["add"].si(5, 5))().get(timeout=TIMEOUT) == 10


def test_chain_steps_carry_parent_and_root_ids(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """Each step's parent_id is the previous step's id; root_id is the first step's id."""
    t = _tasks(celeriac_app)
    result = (t["ids"].si() | t["ids"].si() | t["ids"].si())()
    last = result.get(timeout=TIMEOUT)
    middle = result.parent.get(timeout=TIMEOUT)
    first = result.parent.parent.get(timeout=TIMEOUT)
    assert first[1:3] == [None, first[0]]
    assert middle[1:3] == [first[0], first[0]]
    assert last[:3] == [result.id, middle[0], first[0]]


def test_failed_step_fails_the_rest_of_the_chain(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A step that raises: the chain's result raises the same error; later steps never run."""
    t = _tasks(celeriac_app)
    result = (t["add"].s(1, 1) | t["boom"].s() | t["add"].s(1))()
    with pytest.raises(ValueError, match="boom"):
        result.get(timeout=TIMEOUT)
    celeriac_worker.join(TIMEOUT, reraise=False)


def test_link_calls_the_callback_with_the_result(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """apply_async(link=sig): the callback runs with the task's result prepended."""
    t = _tasks(celeriac_app)
    seen: list[Any] = []
    done = threading.Event()

    @celeriac_app.task(name="cv.collect")
    def collect(value: Any) -> None:
        seen.append(value)
        done.set()

    t["add"].apply_async((20, 22), link=collect.s())
    assert done.wait(TIMEOUT)
    assert seen == [42]


def test_errbacks_are_called_in_a_chain_and_a_group(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """link_error on a chain and on group members: each errback gets the failed task's id."""
    t = _tasks(celeriac_app)
    failed: list[str] = []
    both = threading.Semaphore(0)

    @celeriac_app.task(name="cv.on_error")
    def on_error(task_id: str) -> None:
        failed.append(task_id)
        both.release()

    in_chain = (t["add"].s(1, 1) | t["boom"].s()).on_error(on_error.s()).delay()
    member = t["boom"].s()
    member.link_error(on_error.s())
    in_group = group([member, t["add"].s(1, 2)]).delay()
    assert both.acquire(timeout=TIMEOUT)
    assert both.acquire(timeout=TIMEOUT)
    assert sorted(failed) == sorted([in_chain.id, in_group.results[0].id])


def test_group_returns_results_in_order(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """A group of 100 adds: GroupResult.get() lists the results in member order."""
    t = _tasks(celeriac_app)
    result = group(t["add"].s(i, i) for i in range(100))()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=TIMEOUT) == [2 * i for i in range(100)]
    assert result.ready()
    assert result.successful()
    assert not result.failed()
    assert result.completed_count() == 100


def test_group_members_carry_the_group_id(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """Every member's request.group is the GroupResult's id."""
    t = _tasks(celeriac_app)
    result = group(t["ids"].s() for _ in range(3)).apply_async()
    assert [v[3] for v in result.get(timeout=TIMEOUT)] == [result.id] * 3


def test_group_with_a_failure(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """A failed member: get() raises, failed() is True, completed_count counts the others."""
    t = _tasks(celeriac_app)
    result = group([t["add"].s(1, 1), t["boom"].s()])()
    with pytest.raises(ValueError, match="boom"):
        result.get(timeout=TIMEOUT)
    assert result.failed()
    assert not result.successful()
    assert result.completed_count() == 1
    celeriac_worker.join(TIMEOUT, reraise=False)


def test_chain_rebuilt_from_its_dict(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """A chain turned into a plain dict and rebuilt with signature(d, app=...) still runs."""
    t = _tasks(celeriac_app)
    as_dict = dict(t["add"].s(1, 2) | t["mul"].s(3))
    rebuilt = signature(as_dict, app=celeriac_app)
    assert rebuilt.apply_async().get(timeout=TIMEOUT) == 9


def test_map_starmap_and_chunks(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """task.map, task.starmap and task.chunks run the task over many inputs in few messages."""
    t = _tasks(celeriac_app)

    @celeriac_app.task(name="cv.double")
    def double(x: int) -> int:
        return 2 * x

    assert double.map([1, 2, 3]).delay().get(timeout=TIMEOUT) == [2, 4, 6]
    assert t["add"].starmap([(1, 2), (3, 4)]).delay().get(timeout=TIMEOUT) == [3, 7]
    parts = t["add"].chunks([(i, i) for i in range(10)], 4)().get(timeout=TIMEOUT)
    assert parts == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]


def test_chord_body_gets_header_results_in_order(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """chord(100 adds)(tsum.s()) runs the body once with the results in header order."""
    t = _tasks(celeriac_app)
    bodies: list[list[int]] = []

    @celeriac_app.task(name="cv.tsum")
    def tsum(values: list[int]) -> int:
        bodies.append(values)
        return sum(values)

    result = chord(t["add"].s(i, i) for i in range(100))(tsum.s())
    assert result.get(timeout=TIMEOUT) == sum(2 * i for i in range(100))
    celeriac_worker.join(TIMEOUT)
    assert bodies == [[2 * i for i in range(100)]]


def test_chord_with_a_failed_header_task(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """A failed header task: the body ends FAILURE with a ChordError naming it; errbacks run."""
    t = _tasks(celeriac_app)
    called = threading.Event()

    @celeriac_app.task(name="cv.never")
    def never(values: list[int]) -> None:
        raise AssertionError("the body must not run")

    @celeriac_app.task(name="cv.chord_errback")
    def errback(task_id: str) -> None:
        called.set()

    header = [t["add"].s(1, 1), t["boom"].s()]
    result = chord(header, never.s().on_error(errback.s())).apply_async()
    with pytest.raises(ChordError, match=result.parent.results[1].id):
        result.get(timeout=TIMEOUT, follow_parents=False)
    with pytest.raises(ValueError, match="boom"):  # Celery's follow_parents: the header's own
        result.get(timeout=TIMEOUT)
    assert called.wait(TIMEOUT)
    celeriac_worker.join(TIMEOUT, reraise=False)


def test_group_result_save_and_restore(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """GroupResult.save() keeps the member ids at the hub; restore(id) rebuilds the group."""
    t = _tasks(celeriac_app)
    saved = group(t["add"].s(i, 1) for i in range(3))().save()
    restored = GroupResult.restore(saved.id, app=celeriac_app)
    assert [r.id for r in restored.results] == [r.id for r in saved.results]
    assert restored.get(timeout=TIMEOUT) == [1, 2, 3]
