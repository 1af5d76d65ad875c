"""Nested canvas shapes Celery's suite checks (issue 8): groups unrolled in groups and chord
headers, chains and chords in chord headers, chords in groups, errors raised through parents."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from celeriac import App, Signature, chain, chord, group, signature, states
from celeriac.exceptions import TaskRevokedError
from celeriac.testing import TestWorker

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, clean_env, embed_if_free, wait_for_event

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


class Boom(Exception):
    """The exception the failing task raises."""


def _tasks(app: App) -> dict[str, Any]:
    @app.task(name="shape.add")
    def add(x: Any, y: Any) -> Any:
        return x + y

    @app.task(name="shape.identity")
    def identity(x: Any) -> Any:
        return x

    @app.task(name="shape.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    @app.task(name="shape.add_to_all")
    def add_to_all(values: list[Any], extra: Any) -> list[Any]:
        return [v + extra for v in values]

    @app.task(name="shape.fail")
    def fail(*args: Any) -> None:
        raise Boom("expected")

    return {"add": add, "identity": identity, "tsum": tsum, "add_to_all": add_to_all, "fail": fail}


def test_groups_in_a_group_are_unrolled(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """group(a, group(b, group(c, d))): one flat list of results, in order (Celery's)."""
    add = _tasks(celeriac_app)["add"]
    g = group(add.si(1, 10), group(add.si(1, 100), group(add.si(1, 1000), add.si(1, 2000))))
    assert g().get(timeout=TIMEOUT) == [11, 101, 1001, 2001]


def test_group_of_one_chain_ending_in_a_group(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """group(a | group(b, c)): the inner group's results (Celery's special case)."""
    add = _tasks(celeriac_app)["add"]
    assert group(add.s(1, 2) | group(add.s(1), add.s(2)))().get(timeout=TIMEOUT) == [4, 5]


def test_chains_and_groups_in_a_chord_header(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A chain counts once (its last result), a group is unrolled, a chain ending in a group
    gives a list, a chord gives its body's result."""
    t = _tasks(celeriac_app)
    ident = t["identity"]
    header = (
        ident.si(42),
        chain((ident.si(42),) * 5),
        group((ident.si(42),) * 3),
        chain(ident.si(7), group(ident.s(), ident.s())),
        chord((ident.si(42),) * 4, ident.si(1337)),
    )
    result = group((chord(header, ident.s()),)).delay()
    assert result.get(timeout=TIMEOUT) == [[42, 42, 42, 42, 42, [7, 7], 1337]]


def test_group_and_chain_nested_in_a_chain(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """chain(a, group(b, chain(c, group(d, e))), f): f runs once the whole group has."""
    add = _tasks(celeriac_app)["add"]
    inner = chain(add.si(1, 200), group(add.si(1, 1000), add.si(1, 2000)))
    c = chain(add.si(1, 0), group(add.si(1, 100), inner), add.si(1, 10))
    result = c()
    assert result.get(timeout=TIMEOUT) == 11
    assert result.parent is not None


def test_chords_in_a_chord(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """Chords (written as chords or as group | body) in a chord's header, four levels deep."""
    t = _tasks(celeriac_app)
    add, add_to_all = t["add"], t["add_to_all"]
    c1 = chord(
        [chord([add.s(1, 2), add.s(3, 4)], add.s([5])), chord([add.s(6, 7)], add.s([10]))],
        add_to_all.s(["A"]),
    )
    assert c1().get(timeout=TIMEOUT) == [[3, 7, 5, "A"], [13, 10, "A"]]
    c2 = group(
        [group([add.s(1, 2), add.s(3, 4)]) | add.s([5]), group([add.s(6, 7)]) | add.s([10])]
    ) | add_to_all.s(["A"])
    assert c2().get(timeout=TIMEOUT) == [[3, 7, 5, "A"], [13, 10, "A"]]
    c3 = group(
        [group([group([group([add.s(1, 2)]) | add.s([3])]) | add.s([4])]) | add.s([5])]
    ) | add.s([6])
    assert c3().get(timeout=TIMEOUT) == [[[[3, 3], 4], 5], 6]


def test_errors_propagate_through_parents(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """get() raises the first failed parent's own exception (Celery's follow_parents)."""
    t = _tasks(celeriac_app)
    add, fail, ident = t["add"], t["fail"], t["identity"]
    with pytest.raises(Boom):
        (add.s(1, 1) | fail.s() | group(add.s(1), add.s(1))).delay().get(timeout=TIMEOUT)
    with pytest.raises(Boom):
        chord((fail.s(),), ident.s()).delay().get(timeout=TIMEOUT)
    with pytest.raises(Boom):
        chord((ident.si(1) | fail.s(),), ident.s() | ident.s()).delay().get(timeout=TIMEOUT)
    with pytest.raises(Boom):
        chord((fail.s(),), group(ident.s(), ident.s())).delay().get(timeout=TIMEOUT)


def test_lineage_through_nested_shapes(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """root_id is the first task's id through a chord in a chain and a chain in its header;
    each step's parent_id is the task before it; a header task has its group's id."""
    t = _tasks(celeriac_app)
    add, ident = t["add"], t["identity"]

    @celeriac_app.task(name="shape.lineage", bind=True)
    def lineage(self: Any, *_: Any) -> list[Any]:
        return [self.request.id, self.request.root_id, self.request.parent_id, self.request.group]

    header = group(lineage.s(), ident.s() | lineage.s())
    result = chain(add.si(1, 1), header, lineage.s()).apply_async()
    body_id, body_root, body_parent, _ = result.get(timeout=TIMEOUT)
    first = result.parent.parent
    assert result.id == body_id
    assert body_root == first.id
    members = result.parent.results
    (_m1_id, m1_root, m1_parent, m1_group), (m2_id, m2_root, m2_parent, _) = [
        m.get(timeout=TIMEOUT) for m in members
    ]
    assert m1_root == m2_root == first.id
    assert m1_parent == first.id
    assert m1_group == result.parent.id
    assert m2_parent != first.id  # the chain's second step: its parent is the chain's first
    assert body_parent == m2_id  # the last header task (Celery: the one that ended last)


PROCESS_TASKS = """

@app.task(name="itasks.identity")
def identity(x):
    return x


@app.task(name="itasks.boom")
def boom(*args):
    raise KeyError("boom")
"""


def test_nested_shapes_with_a_worker_process(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """A real worker process: a chain ending in a group inside a chord header, a chain with a
    group and a chain in its middle, nested groups, and a failed step raised through parents."""
    with (tasks_module.dir / "itasks.py").open("a") as f:
        f.write(PROCESS_TASKS)
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "-P", "prefork", "-c", "2"]
    argv += ["--broker", broker_url, "--log-format", "json", "-l", "INFO"]
    argv += embed_if_free(broker_url)  # given --broker, auto would wait for a hub
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    worker = procs.spawn("worker", argv, cwd=tasks_module.dir, env=env)
    wait_for_event(worker.log, "worker_ready", proc=worker)

    def sig(name: str, *args: Any, immutable: bool = False) -> Signature:
        return signature(f"itasks.{name}", args, app=client, immutable=immutable)

    header = (
        sig("identity", 1, immutable=True),
        chain(sig("identity", 2), group(sig("identity"), sig("identity"))),
    )
    assert chord(header, sig("identity")).delay().get(timeout=RESULT_TIMEOUT) == [1, [2, 2]]

    def si(name: str, *args: Any) -> Signature:
        return sig(name, *args, immutable=True)

    inner = chain(si("add", 1, 200), group(si("add", 1, 1000), si("add", 1, 2000)))
    assert (
        chain(si("add", 1, 0), group(si("add", 1, 100), inner), si("add", 1, 10))().get(
            timeout=RESULT_TIMEOUT
        )
        == 11
    )
    nested = group(sig("add", 1, 10), group(sig("add", 1, 100), group(sig("add", 1, 1000))))
    assert nested().get(timeout=RESULT_TIMEOUT) == [11, 101, 1001]
    with pytest.raises(KeyError):
        (sig("add", 1, 1) | sig("boom") | group(sig("add", 1), sig("add", 2))).delay().get(
            timeout=RESULT_TIMEOUT
        )


def test_task_objects_and_returned_results(celeriac_app: App, celeriac_worker: TestWorker) -> None:
    """chord(header)(task), chord([task, task], chain) (Celery's group-in-the-middle shape);
    a task returning a chain's AsyncResult stores its id tuple (Celery's), parents included."""
    t = _tasks(celeriac_app)
    add, tsum = t["add"], t["tsum"]

    @celeriac_app.task(name="shape.builds_a_chain")
    def builds_a_chain() -> Any:
        return (add.s(1, 1) | add.s(2) | group(add.s(3), add.s(4)) | tsum.s())()

    assert chord([add.s(1, 1), add.s(2, 2)])(tsum).get(timeout=TIMEOUT) == 6
    t1 = chain(tsum.s(), group(add.s(8), add.s(16)), tsum.s() | add.s(32))
    assert chord([add.si(0, 1)], chord([tsum, tsum], t1)).apply_async().get(timeout=TIMEOUT) == 60
    stored = builds_a_chain.delay().get(timeout=TIMEOUT)
    assert len(stored) == 2
    assert isinstance(stored[0][1], list)  # the chord's header GroupResult, as a tuple


def test_a_revoked_step_ends_the_wait_on_its_chain(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """chain(a delayed, b)(): revoking a (removed at the hub) makes the chain's get() raise
    TaskRevokedError (Celery's follow_parents) instead of waiting for b, which never runs."""
    add = _tasks(celeriac_app)["add"]
    result = chain(add.s(1, 1).set(countdown=3600), add.s(2))()
    result.parent.revoke()
    with pytest.raises(TaskRevokedError):
        result.get(timeout=TIMEOUT)
    assert result.state == states.PENDING
