"""``worker --cpu-affinity`` (issue 18): a real worker's threads on one CPU, its embedded hub's
process on every CPU (restarted after kill -9 too), and its tasks run."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from celeriac import App

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    TaskModule,
    children_of,
    clean_env,
    read_events,
    wait_for_event,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
        reason="needs Linux and two CPUs (with one, there is nothing to choose)",
    ),
]


def _cpus(pid: int, tid: int | None = None) -> str:
    """A process's (or one of its threads') ``Cpus_allowed_list``."""
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    for line in Path(path).read_text().splitlines():
        if line.startswith("Cpus_allowed_list"):
            return line.split()[1]
    raise AssertionError(f"no Cpus_allowed_list in {path}")


def _thread_cpus(pid: int) -> set[str]:
    """The ``Cpus_allowed_list`` of every thread of process ``pid``."""
    return {_cpus(pid, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def _worker(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, *options: str, **env: str
) -> Proc:
    """A worker with ``options`` (and ``env``) and its own embedded hub, ready."""
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker_url]
    argv += ["-c", "2", "--log-format", "json", "-l", "INFO", "--embedded-hub", "always"]
    data = str(tasks_module.dir.parent / "hub")
    worker = procs.spawn(
        "worker",
        [*argv, *options],
        cwd=tasks_module.dir,
        env=clean_env(CELERIAC_HUB_DATA_DIR=data, **env),
    )
    wait_for_event(worker.log, "worker_ready", proc=worker)
    return worker


def test_a_worker_with_cpu_affinity_one_runs_its_threads_on_one_cpu(
    procs: Spawner, broker_url: str, tasks_module: TaskModule
) -> None:
    """Every thread of a threads worker on the one CPU it logs; its hub's process, and the
    one it starts again after a kill -9, on every CPU; its tasks run."""
    every = _cpus(os.getpid())
    worker = _worker(
        procs,
        broker_url,
        tasks_module,
        "--cpu-affinity",
        "one",
        CELERIAC_WORKER_EMBEDDED_HUB_PROCESS="true",
    )
    pinned = wait_for_event(worker.log, "cpu_affinity", proc=worker)
    cpu = pinned["cpus"]
    assert cpu.isdigit()
    assert int(cpu) in os.sched_getaffinity(0)
    assert _thread_cpus(worker.pid) == {cpu}
    hub = next(e for e in read_events(worker.log) if e["event"] == "embedded_hub_started")
    assert hub["process"] is True
    assert _cpus(hub["pid"]) == every  # started before the worker pinned itself
    app = App("probe", broker=broker_url, environ={})
    try:
        results = [app.send_task("itasks.add", [i, i]) for i in range(20)]
        assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [2 * i for i in range(20)]
    finally:
        app.close()
    assert _thread_cpus(worker.pid) == {cpu}  # threads the worker started since too
    # A hub the pinned worker starts again (kill -9) keeps every CPU.
    os.kill(hub["pid"], signal.SIGKILL)
    again = wait_for_event(worker.log, "embedded_hub_restarted", proc=worker)
    assert again["pid"] != hub["pid"]
    assert _cpus(again["pid"]) == every


def test_a_cpu_list_the_worker_may_not_use_stops_it_at_once_saying_why(
    procs: Spawner, broker_url: str, tasks_module: TaskModule
) -> None:
    """Checked before anything starts: the worker exits with the allowed CPUs in its error,
    and no hub was started for it."""
    outside = str(max(os.sched_getaffinity(0)) + 1000)
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker_url]
    argv += ["--log-format", "json", "--embedded-hub", "always", "--cpu-affinity", outside]
    worker = procs.spawn("worker", argv, cwd=tasks_module.dir, env=clean_env())
    assert worker.wait(RESULT_TIMEOUT) == 1
    text = worker.log.read_text()
    assert f"worker_cpu_affinity='{outside}': none of these CPUs is allowed" in text
    assert "embedded_hub_started" not in text


def test_a_prefork_worker_says_it_ignores_the_setting_and_its_children_keep_every_cpu(
    procs: Spawner, broker_url: str, tasks_module: TaskModule
) -> None:
    """A prefork worker logs cpu_affinity_ignored; it and its children keep every CPU."""
    every = _cpus(os.getpid())
    worker = _worker(procs, broker_url, tasks_module, "-P", "prefork", "--cpu-affinity", "one")
    ignored = wait_for_event(worker.log, "cpu_affinity_ignored", proc=worker)
    assert "prefork" in ignored["reason"]
    children = children_of(worker.pid)
    assert len(children) >= 2  # (its two children; the hub runs in a thread of the parent)
    assert {_cpus(pid) for pid in children} == {every}
    assert _cpus(worker.pid) == every
