"""``worker --cpu-affinity`` (issue 18): a real worker's threads on one CPU, its embedded hub's
process on every CPU (restarted after kill -9 too), and its tasks run."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from celeriac import App

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, clean_env, read_events, wait_for_event

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


def test_a_worker_with_cpu_affinity_one_runs_its_threads_on_one_cpu(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, tmp_path: Path
) -> None:
    every = _cpus(os.getpid())
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker_url]
    argv += ["-c", "2", "--log-format", "json", "-l", "INFO", "--embedded-hub", "always"]
    argv += ["--cpu-affinity", "one"]
    env = clean_env(
        CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"), CELERIAC_WORKER_EMBEDDED_HUB_PROCESS="true"
    )
    worker = procs.spawn("worker", argv, cwd=tasks_module.dir, env=env)
    wait_for_event(worker.log, "worker_ready", proc=worker)
    pinned = wait_for_event(worker.log, "cpu_affinity", proc=worker)
    cpu = pinned["cpus"]
    assert cpu.isdigit()
    assert int(cpu) in os.sched_getaffinity(0)
    threads = {_cpus(worker.pid, int(tid)) for tid in os.listdir(f"/proc/{worker.pid}/task")}
    assert threads == {cpu}
    hub = next(e for e in read_events(worker.log) if e["event"] == "embedded_hub_started")
    assert hub["process"] is True
    assert _cpus(hub["pid"]) == every  # started before the worker pinned itself
    app = App("probe", broker=broker_url, environ={})
    try:
        results = [app.send_task("itasks.add", [i, i]) for i in range(20)]
        assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [2 * i for i in range(20)]
    finally:
        app.close()
    # Threads the worker started since are on its CPU too.
    threads = {_cpus(worker.pid, int(tid)) for tid in os.listdir(f"/proc/{worker.pid}/task")}
    assert threads == {cpu}
    # A hub the pinned worker starts again (kill -9) keeps every CPU.
    os.kill(hub["pid"], signal.SIGKILL)
    again = wait_for_event(worker.log, "embedded_hub_restarted", proc=worker)
    assert again["pid"] != hub["pid"]
    assert _cpus(again["pid"]) == every


def test_a_cpu_list_the_worker_may_not_use_stops_it_at_once_saying_why(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, tmp_path: Path
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
    procs: Spawner, broker_url: str, tasks_module: TaskModule, tmp_path: Path
) -> None:
    every = _cpus(os.getpid())
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker_url]
    argv += ["-P", "prefork", "-c", "2", "--log-format", "json", "-l", "INFO"]
    argv += ["--embedded-hub", "always", "--cpu-affinity", "one"]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    worker = procs.spawn("worker", argv, cwd=tasks_module.dir, env=env)
    wait_for_event(worker.log, "worker_ready", proc=worker)
    ignored = wait_for_event(worker.log, "cpu_affinity_ignored", proc=worker)
    assert "prefork" in ignored["reason"]
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert len(children) >= 2  # (its two children; the hub runs in a thread of the parent)
    assert {_cpus(int(pid)) for pid in children} == {every}
    assert _cpus(worker.pid) == every
