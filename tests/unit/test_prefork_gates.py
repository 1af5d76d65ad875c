"""Node-wide task type limits for prefork: the parent's gates and the children's side."""

from __future__ import annotations

import select
from collections.abc import Iterator
from typing import Any

import pytest

from celeriac import App
from celeriac._protocol import TaskMessage
from celeriac.actors.task_actor import Delivery
from celeriac.runtime.prefork_types import ChildGates, NodeGates, gated_names

WAIT = 10.0


def delivery(tag: str, name: str = "pg.single") -> Delivery:
    """A delivery of ``name`` tagged ``tag``."""
    return Delivery(TaskMessage(tag, name), "", tag=tag)


@pytest.fixture
def app() -> App:
    """An app with one type capped at 1 and one free type."""
    app = App("pg", environ={})

    @app.task(name="pg.single", max_concurrency=1)
    def single() -> None: ...

    @app.task(name="pg.free")
    def free() -> None: ...

    return app


@pytest.fixture
def gates(app: App) -> Iterator[NodeGates]:
    """The parent's gates for ``app``."""
    node = NodeGates()
    node.start(app.tasks, app.conf.freeze())
    yield node
    node.stop()


class Children:
    """Records what the parent sends each child; ``gone`` children cannot be told."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, tuple[str, str]]] = []
        self.gone: set[int] = set()

    def send(self, child: int, message: tuple[str, str]) -> bool:
        """Record a send (False for a gone child)."""
        if child in self.gone:
            return False
        self.sent.append((child, message))
        return True


def next_release(gates: NodeGates, children: Children) -> tuple[int, tuple[str, str]]:
    """Wait (on the wake-up fd) until the parent loop would send a release; that send."""
    before = len(children.sent)
    while len(children.sent) == before:
        readable, _, _ = select.select([gates.waitable()], [], [], WAIT)
        assert readable, "no release within the wait"
        gates.flush(children.send)
    return children.sent[-1]


def test_gated_names_are_the_limited_types(app: App) -> None:
    """Only types with a rate limit or a cap are gated."""
    assert gated_names(app.tasks, app.conf) == {"pg.single"}


def test_child_side_sends_offers_dones_and_withdrawals() -> None:
    """A child offers its limited types to the parent and runs the others itself."""
    told: list[tuple[Any, ...]] = []
    child = ChildGates({"pg.single"}, lambda *m: told.append(m))
    assert not child.offer(delivery("f1", "pg.free"))
    assert child.offer(delivery("t1"))
    child.finished(delivery("t1"))
    child.finished(delivery("f1", "pg.free"))
    child.drain([delivery("t2")])
    child.drain([])
    assert told == [("offer", "t1", "pg.single"), ("type_done", "t1"), ("withdraw", ["t2"])]


def test_cap_holds_across_children_and_a_dead_child_frees_its_place(gates: NodeGates) -> None:
    """Capped at 1 for the node: child 1 waits while child 0 runs; child 0 dies: child 1 runs."""
    children = Children()
    gates.on_child(0, ("offer", "t1", "pg.single"))
    gates.on_child(1, ("offer", "t2", "pg.single"))
    assert next_release(gates, children) == (0, ("release", "t1"))
    children.gone.add(0)
    gates.child_gone(0)
    assert next_release(gates, children) == (1, ("release", "t2"))


def test_withdrawn_deliveries_never_run_and_done_frees_the_cap(gates: NodeGates) -> None:
    """A delivery its child gave back is not released; type_done lets the next one go."""
    children = Children()
    gates.on_child(0, ("offer", "t1", "pg.single"))
    assert next_release(gates, children) == (0, ("release", "t1"))
    gates.on_child(1, ("offer", "t2", "pg.single"))
    gates.on_child(1, ("offer", "t3", "pg.single"))
    gates.on_child(1, ("withdraw", ["t2"]))
    gates.on_child(0, ("type_done", "t1"))
    assert next_release(gates, children) == (1, ("release", "t3"))
    assert gates.statistics()["pg.single"]["released"] == 2


def test_a_release_for_a_gone_child_frees_its_place_at_once(gates: NodeGates) -> None:
    """If the child cannot be told, the release counts as finished: the next one goes."""
    children = Children()
    children.gone.add(0)
    gates.on_child(0, ("offer", "t1", "pg.single"))
    gates.on_child(1, ("offer", "t2", "pg.single"))
    assert next_release(gates, children) == (1, ("release", "t2"))
