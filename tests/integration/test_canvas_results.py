"""Task.replace, AsyncResult.children, collect and then on a real hub and worker (issue 8)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from celeriac import App, AsyncResult, chord, group
from celeriac.testing import TestWorker

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


nesting: list[int] = []
replaced: list[str] = []


def _tasks(app: App) -> dict[str, Any]:  # noqa: C901 - the tasks of every test here
    @app.task(name="res.add", bind=True)
    def add(self: Any, x: int, y: int) -> int:
        nesting.append(self.request.replaced_task_nesting)
        return x + y

    @app.task(name="res.fan", bind=True)
    def fan(self: Any, n: int) -> int:
        for i in range(n):
            add.delay(i, i)
        return n

    @app.task(name="res.tree")
    def tree() -> str:
        fan.delay(2)
        add.delay(10, 10)
        return "root"

    @app.task(name="res.swap", bind=True)
    def swap(self: Any, x: int) -> int:
        self.replace(add.s(x, 100))
        raise AssertionError("replace returned")  # never reached

    @app.task(name="res.swap_chain", bind=True)
    def swap_chain(self: Any, x: int) -> int:
        self.replace(add.s(x, 1) | add.s(10))
        raise AssertionError("replace returned")

    @app.task(name="res.swap_group", bind=True)
    def swap_group(self: Any, x: int) -> int:
        self.replace(group(add.s(x, i) for i in range(3)))
        raise AssertionError("replace returned")

    @app.task(name="res.swap_boom", bind=True)
    def swap_boom(self: Any) -> int:
        self.replace(add.s(1, 1) | boom.s())
        raise AssertionError("replace returned")

    class Swapping(app.Task):  # type: ignore[name-defined,misc]
        """Celery's on_replace hook: it may change the replacement, then calls super()."""

        def on_replace(self, sig: Any) -> Any:
            replaced.append(sig.task)
            return super().on_replace(add.s(sig.args[0], 1000))

    @app.task(name="res.swap_hooked", bind=True, base=Swapping)
    def swap_hooked(self: Any, x: int) -> int:
        self.replace(add.s(x, 100))
        raise AssertionError("replace returned")

    @app.task(name="res.boom")
    def boom(*args: Any) -> None:
        raise ValueError("boom")

    @app.task(name="res.mark")
    def mark(value: int) -> int:
        return value * 2

    return {
        "add": add,
        "fan": fan,
        "tree": tree,
        "swap": swap,
        "mark": mark,
        "swap_chain": swap_chain,
        "swap_group": swap_group,
        "swap_boom": swap_boom,
        "swap_hooked": swap_hooked,
    }


def test_children_lists_the_tasks_sent_while_running(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A task that sends three tasks: its result's children are those three, in order."""
    t = _tasks(celeriac_app)
    result = t["fan"].delay(3)
    assert result.get(timeout=TIMEOUT) == 3
    children = result.children
    assert children is not None
    assert [c.get(timeout=TIMEOUT) for c in children] == [0, 2, 4]
    assert t["add"].delay(1, 1).children is None  # not finished yet: None (Celery's)


def test_collect_walks_the_whole_tree_depth_first(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """collect() yields (result, value) for the root and every descendant, depth first."""
    t = _tasks(celeriac_app)
    values = [value for _, value in t["tree"].delay().collect(timeout=TIMEOUT)]
    assert values == ["root", 2, 0, 2, 20]


def test_then_calls_back_once_the_result_is_in(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """then(callback) is called with the finished result, from the waiting side."""
    t = _tasks(celeriac_app)
    got: list[Any] = []
    done = threading.Event()

    def callback(result: AsyncResult[Any]) -> None:
        got.append(result.get(timeout=TIMEOUT))
        done.set()

    t["add"].delay(20, 22).then(callback)
    assert done.wait(TIMEOUT)
    assert got == [42]


def test_replace_keeps_the_id_and_the_chain_goes_on(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A task replaced by add.s(x, 100): its own id gets add's result, and the next chain
    step receives it."""
    t = _tasks(celeriac_app)
    nesting.clear()
    assert t["swap"].delay(1).get(timeout=TIMEOUT) == 101
    assert nesting == [1]  # request.replaced_task_nesting of the replacement
    chained = (t["swap"].s(2) | t["mark"].s()).delay()
    assert chained.get(timeout=TIMEOUT) == 204
    assert chained.parent is not None
    assert chained.parent.get(timeout=TIMEOUT) == 102


def test_on_replace_sees_and_may_change_the_replacement(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """Celery's on_replace(sig) hook is called with the replacement; what it passes to
    super().on_replace() is what runs under the replaced task's id."""
    t = _tasks(celeriac_app)
    replaced.clear()
    assert t["swap_hooked"].delay(1).get(timeout=TIMEOUT) == 1001
    assert replaced == ["res.add"]


def test_replace_by_a_chain_or_a_group_keeps_the_id(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """Replaced by a chain: the task's id gets the chain's last value, and a chain after it
    goes on from there; replaced by a group: the list of the members' values."""
    t = _tasks(celeriac_app)
    assert t["swap_chain"].delay(1).get(timeout=TIMEOUT) == 12
    assert (t["swap_chain"].s(2) | t["mark"].s()).delay().get(timeout=TIMEOUT) == 26
    assert t["swap_group"].delay(5).get(timeout=TIMEOUT) == [5, 6, 7]


def test_a_failing_replacement_fails_the_replaced_task_and_calls_its_errback(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """The replacement chain fails: the replaced task's id raises that error and the errback
    linked to the replaced task is called with its id."""
    t = _tasks(celeriac_app)
    called: list[str] = []
    done = threading.Event()

    @celeriac_app.task(name="res.on_error")
    def on_error(task_id: str) -> None:
        called.append(task_id)
        done.set()

    result = t["swap_boom"].apply_async(link_error=on_error.s())
    with pytest.raises(ValueError, match="boom"):
        result.get(timeout=TIMEOUT)
    assert done.wait(TIMEOUT)
    assert called == [result.id]


def test_a_group_whose_only_member_is_a_group_is_unrolled(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """group(group(a, b)) is group(a, b) (Celery's unrolling): a flat list of results."""
    t = _tasks(celeriac_app)
    nested = group(group(t["add"].s(1, 1), t["add"].s(2, 2)))
    assert nested.delay().get(timeout=TIMEOUT) == [2, 4]


def test_app_backend_reads_the_hubs_result_store(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """app.backend: get_task_meta (status, result, children), get_state, forget; chords are
    allowed."""
    t = _tasks(celeriac_app)
    backend = celeriac_app.backend
    backend.ensure_chords_allowed()
    result = t["fan"].delay(2)
    result.get(timeout=TIMEOUT)
    meta = backend.get_task_meta(result.id)
    assert (meta["status"], meta["result"]) == ("SUCCESS", 2)
    assert meta["children"] == [c.id for c in result.children or ()]
    assert len(meta["children"]) == 2
    assert backend.get_state(result.id) == "SUCCESS"
    backend.forget(result.id)
    assert backend.get_state(result.id) == "PENDING"


def test_a_chord_with_one_signature_as_its_header(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """chord(sig, body): a single signature is a header of one (Celery's)."""
    t = _tasks(celeriac_app)

    @celeriac_app.task(name="res.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    assert chord(t["add"].s(20, 22), tsum.s())().get(timeout=TIMEOUT) == 42


def test_a_chord_in_a_chord_header_counts_for_the_outer_chord(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """chord([chord(header, body)], outer_body): the inner body's result is the outer
    header's value (it counts at the hub for the outer chord)."""
    t = _tasks(celeriac_app)

    @celeriac_app.task(name="res.tsum2")
    def tsum(values: list[int]) -> int:
        return sum(values)

    inner = chord([t["add"].s(1, 1), t["add"].s(2, 2)], tsum.s())
    outer = chord([inner, t["add"].s(10, 10)], tsum.s())
    assert outer().get(timeout=TIMEOUT) == 26
