"""Run-ahead between real processes: a task handed to wait in a busy slot of a threads worker,
behind a long task, is recalled and given back to the hub, and another worker runs it while the
long task still runs (README "Fair dispatch")."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from celeriac import App

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    TaskModule,
    clean_env,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration


def _worker(procs: Spawner, url: str, tasks: TaskModule, name: str) -> Proc:
    """A one-slot threads worker (prefetch 2: one running, one waiting in the slot), logging
    at DEBUG so that its give-backs show."""
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", url]
    argv += ["-P", "threads", "-c", "1", "-n", f"{name}@test", "--log-format", "json"]
    argv += ["-l", "DEBUG", "--embedded-hub", "never"]
    proc = procs.spawn(name, argv, cwd=tasks.dir, env=clean_env())
    wait_for_event(proc.log, "worker_ready", proc=proc)
    return proc


def test_a_task_waiting_in_a_slot_behind_a_long_one_runs_on_another_worker(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """The busy worker's slot runs a long task with the next one waiting in it; that one goes
    back to the hub after worker_prefetch_giveback and the idle worker runs it at once, while
    the long task still runs."""
    procs.hub(broker_url, tmp_path / "hub-data")
    busy = _worker(procs, broker_url, tasks_module, "busy")

    def started(task_id: str) -> bool:
        return any(
            phase == "start" and tid == task_id for phase, tid, _ in tasks_module.executions()
        )

    long = client.send_task("itasks.record", [600])
    wait_until(lambda: started(long.id), RESULT_TIMEOUT, "the long task to start", busy)
    published = time.time()
    quick = client.send_task("itasks.record", [0])
    given = wait_for_event(busy.log, "prefetch_given_back", RESULT_TIMEOUT, proc=busy)
    assert given.get("waited_in_slots") is True  # from the slot, not from the buffer
    waited = datetime.fromisoformat(given["timestamp"]).timestamp() - published
    assert waited < 5, f"given back after {waited:.1f}s (giveback: 0.1s)"  # a loaded machine
    assert not started(quick.id)

    idle = _worker(procs, broker_url, tasks_module, "idle")
    ready = time.monotonic()
    assert quick.get(timeout=RESULT_TIMEOUT) == idle.pid
    took = time.monotonic() - ready
    assert took < 10, f"the idle worker took {took:.1f}s to run it"  # about a second at most
    runs = [(phase, pid) for phase, tid, pid in tasks_module.executions() if tid == quick.id]
    assert runs == [("start", idle.pid), ("end", idle.pid)]  # once, never on the busy worker
    assert not any(
        phase == "end" and tid == long.id for phase, tid, _ in tasks_module.executions()
    )  # the long task still runs: the quick one did not wait for it
    busy.kill9()  # not 600 seconds of warm shutdown
    idle.kill9()  # nor on the worker the long task is redelivered to


def test_quick_tasks_behind_a_slow_one_in_a_deep_slot_do_not_wait_for_it(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, client: App
) -> None:
    """A slot of quick tasks holds up to 64 waiting deliveries (``ThreadPool.run_ahead``, issue
    18). One slow task in a burst of quick ones: what waits behind it in its slot is recalled
    by the other slot or given back, and every quick task runs while the slow one still runs."""
    worker = procs.worker(broker_url, cwd=tasks_module.dir, concurrency=2)
    warm = [client.send_task("itasks.record", [0]) for _ in range(300)]  # the window widens
    for r in warm:
        r.get(timeout=RESULT_TIMEOUT)
    burst = [client.send_task("itasks.record", [0]) for _ in range(20)]
    slow = client.send_task("itasks.record", [600])
    burst += [client.send_task("itasks.record", [0]) for _ in range(400)]
    deadline = time.monotonic() + RESULT_TIMEOUT * 2
    for r in burst:
        assert r.get(timeout=max(1.0, deadline - time.monotonic())) == worker.pid
    ended = {tid for phase, tid, _ in tasks_module.executions() if phase == "end"}
    assert slow.id not in ended  # the quick ones did not wait for it
    assert any(
        phase == "start" and tid == slow.id for phase, tid, _ in tasks_module.executions()
    )  # it did run meanwhile (in one slot, while the other took the rest)
    worker.kill9()  # not 600 seconds of warm shutdown
