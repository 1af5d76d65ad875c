"""kill -9 of a worker in the middle of tasks: every task still completes on another worker."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from celeriac import App

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, wait_until

pytestmark = pytest.mark.integration

TASKS = 40
SLEEP = 0.15


def test_killed_worker_tasks_run_on_the_survivor(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """Tasks held by a SIGKILLed worker are redelivered to the surviving worker and complete."""
    procs.hub(broker_url, tmp_path / "hub-data")
    victim = procs.worker(broker_url, cwd=tasks_module.dir, name="victim")
    survivor = procs.worker(broker_url, cwd=tasks_module.dir, name="survivor")

    results = [client.send_task("itasks.record", [SLEEP]) for _ in range(TASKS)]
    ids = {r.id for r in results}

    def victim_busy_after_one_done() -> bool:
        started: set[str] = set()
        ended: set[str] = set()
        for phase, tid, pid in tasks_module.executions():
            if pid == victim.pid:
                (started if phase == "start" else ended).add(tid)
        return bool(ended) and bool(started - ended)

    wait_until(victim_busy_after_one_done, RESULT_TIMEOUT, "the victim to be mid-task")
    victim.kill9()
    victim_log = tasks_module.executions()

    pids = {r.get(timeout=RESULT_TIMEOUT) for r in results}
    assert pids <= {victim.pid, survivor.pid}

    log = tasks_module.executions()
    by_id: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for phase, tid, pid in log:
        by_id[tid].append((phase, pid))
    assert set(by_id) == ids
    assert all(any(phase == "end" for phase, _ in by_id[tid]) for tid in ids)

    started_by_victim = {tid for phase, tid, pid in victim_log if pid == victim.pid}
    ended_by_victim = {tid for phase, tid, pid in log if phase == "end" and pid == victim.pid}
    cut_short = started_by_victim - ended_by_victim
    assert cut_short, "the victim was killed while running a task"
    for tid in cut_short:
        assert ("end", survivor.pid) in by_id[tid], f"{tid} was not rerun by the survivor"
    # Everything the victim did not finish was run by the survivor.
    assert {tid for tid in ids if tid not in ended_by_victim} <= {
        tid for phase, tid, pid in log if phase == "end" and pid == survivor.pid
    }
