"""Nested canvas shapes: a group or chord inside a chain, a chain inside a group or chord."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import App, GroupResult, chain, chord, group
from celeriac.testing import TestWorker

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


def _tasks(app: App) -> dict[str, Any]:
    @app.task(name="nest.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="nest.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    return {"add": add, "tsum": tsum}


def test_group_at_the_end_of_a_chain(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """add.s(1, 1) | group(add.s(10), add.s(20)): the chain's result is the GroupResult."""
    t = _tasks(celeriac_app)
    result = (t["add"].s(1, 1) | group(t["add"].s(10), t["add"].s(20)))()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=TIMEOUT) == [12, 22]


def test_group_in_the_middle_of_a_chain_becomes_a_chord(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """add.s(1, 1) | group(...) | tsum.s() | add.s(100): the group's results are summed."""
    t = _tasks(celeriac_app)
    c = t["add"].s(1, 1) | group(t["add"].s(10), t["add"].s(20)) | t["tsum"].s() | t["add"].s(100)
    assert c().get(timeout=TIMEOUT) == 134


def test_chord_in_a_chain(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """chord(header, tsum) | add.s(1): the step after the chord gets the body's result."""
    t = _tasks(celeriac_app)
    c = chain(chord([t["add"].s(i, i) for i in range(4)], t["tsum"].s()), t["add"].s(1))
    assert c.apply_async().get(timeout=TIMEOUT) == 13


def test_chain_in_a_group(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """group(chain, chain): each member's result is its chain's last result."""
    t = _tasks(celeriac_app)
    g = group(t["add"].s(1, 1) | t["add"].s(1), t["add"].s(2, 2) | t["add"].s(2))
    assert g().get(timeout=TIMEOUT) == [3, 6]


def test_chain_as_a_chord_body(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """chord(header)(tsum.s() | add.s(5)): the body chain runs after the header."""
    t = _tasks(celeriac_app)
    result = chord(t["add"].s(i, 0) for i in range(5))(t["tsum"].s() | t["add"].s(5))
    assert result.get(timeout=TIMEOUT) == 15
