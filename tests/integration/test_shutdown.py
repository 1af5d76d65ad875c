"""SIGTERM to a worker: running tasks finish, queued ones go back to the hub, nothing is lost."""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from celeriac import App

from .conftest import (
    RESULT_TIMEOUT,
    Spawner,
    TaskModule,
    clean_env,
    count_events,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration

TASKS = 10
SLEEP = 0.4


def test_warm_shutdown_finishes_running_and_requeues_the_rest(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """A SIGTERMed worker finishes its running tasks, exits 0; the rest run on the next worker."""
    procs.hub(broker_url, tmp_path / "hub-data")
    first = procs.worker(broker_url, cwd=tasks_module.dir, concurrency=2, name="first")
    results = [client.send_task("itasks.record", [SLEEP]) for _ in range(TASKS)]
    ids = {r.id for r in results}

    def running_on_first() -> set[str]:
        log = tasks_module.executions()
        started = {tid for phase, tid, pid in log if phase == "start" and pid == first.pid}
        ended = {tid for phase, tid, pid in log if phase == "end" and pid == first.pid}
        return started - ended

    wait_until(lambda: len(running_on_first()) == 2, RESULT_TIMEOUT, "both slots busy", first)
    first.popen.send_signal(signal.SIGTERM)
    assert first.wait(RESULT_TIMEOUT) == 0
    assert count_events(first.log, "warm_shutdown") == 1
    assert not running_on_first(), "a running task was abandoned"

    done_by_first = set(tasks_module.ended())
    assert done_by_first
    assert len(done_by_first) < TASKS, "some tasks were still queued at the SIGTERM"

    second = procs.worker(broker_url, cwd=tasks_module.dir, concurrency=4, name="second")
    pids = [r.get(timeout=RESULT_TIMEOUT) for r in results]
    assert set(pids) == {first.pid, second.pid}

    log = tasks_module.executions()
    starts = Counter(tid for phase, tid, _ in log if phase == "start")
    ends = Counter(tid for phase, tid, _ in log if phase == "end")
    assert set(starts) == set(ends) == ids
    assert set(starts.values()) == set(ends.values()) == {1}  # each exactly once
    second_ran = {tid for phase, tid, pid in log if phase == "end" and pid == second.pid}
    assert second_ran == ids - done_by_first


def test_cold_shutdown_of_a_threads_worker_exits_at_once_and_the_task_runs_once_more(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """SIGINT then SIGTERM to a threads worker running a long task: it exits long before the task
    could end, with exit code 1 (a task was abandoned) after logging how many; the hub gets
    the task back and the next worker runs it; it never ends on the first worker.

    "At once" is measured against the task (120 s), not a wall-clock bound a loaded machine
    would break."""
    task_seconds = 120.0
    procs.hub(broker_url, tmp_path / "hub-data")
    first = procs.worker(broker_url, cwd=tasks_module.dir, concurrency=1, name="first")
    result = client.send_task("itasks.record", [task_seconds])
    wait_until(tasks_module.executions, RESULT_TIMEOUT, "the task to start", first)
    first.popen.send_signal(signal.SIGINT)  # Ctrl-C: warm, as SIGTERM
    wait_until(lambda: count_events(first.log, "warm_shutdown"), RESULT_TIMEOUT, "warm", first)
    start = time.monotonic()
    first.popen.send_signal(signal.SIGTERM)
    assert first.wait(task_seconds / 2) == 1
    assert time.monotonic() - start < task_seconds / 4
    assert count_events(first.log, "cold_shutdown") == 1
    assert count_events(first.log, "tasks_abandoned") == 1
    second = procs.worker(broker_url, cwd=tasks_module.dir, concurrency=1, name="second")
    wait_until(
        lambda: [e for e in tasks_module.executions() if e[0] == "start" and e[2] == second.pid],
        RESULT_TIMEOUT,
        "the task to be redelivered to the second worker",
        second,
    )
    starts = [(tid, pid) for phase, tid, pid in tasks_module.executions() if phase == "start"]
    assert starts == [(result.id, first.pid), (result.id, second.pid)]
    assert not [e for e in tasks_module.executions() if e[0] == "end"]
    second.kill9()  # it runs the long task now: not seconds of warm shutdown at teardown


def test_sigterm_to_the_hub_keeps_what_it_confirmed_and_a_restart_delivers_it(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """A hub with no body window (every queued body on disk only) holding 20 confirmed tasks:
    SIGTERM exits 0 after ``hub_stopped``; the hub restarted on its data dir restores the 20
    (headers only) and a worker gets each with its own arguments, read back from the store."""
    data = tmp_path / "hub-data"
    argv = [sys.executable, "-m", "celeriac", "hub", "--bind", broker_url]
    argv += ["--data-dir", str(data), "--log-format", "json"]
    env = clean_env(CELERIAC_HUB_BODY_WINDOW_SIZE="0")
    hub = procs.spawn("hub", argv, cwd=tmp_path, env=env)
    wait_for_event(hub.log, "hub_started", proc=hub)
    results = [client.send_task("itasks.add", [i, 1000]) for i in range(20)]
    client.flush(RESULT_TIMEOUT)
    hub.popen.send_signal(signal.SIGTERM)
    assert hub.wait(RESULT_TIMEOUT) == 0
    assert count_events(hub.log, "hub_stopped") == 1
    again = procs.spawn("hub", argv, cwd=tmp_path, env=env)
    assert wait_for_event(again.log, "hub_started", proc=again)["restored"] == 20
    procs.worker(broker_url, cwd=tasks_module.dir)
    assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [i + 1000 for i in range(20)]
    again.popen.send_signal(signal.SIGTERM)
    assert again.wait(RESULT_TIMEOUT) == 0
    assert wait_for_event(again.log, "hub_stopped")["bodies_read"] == 20


#: A worker_shutdown receiver that never returns (a user's bug): the worker's stop hangs there.
STUCK_SOURCE = """
import os, threading
from itasks import app, SIGNAL_LOG, _append
from celeriac import signals

@signals.worker_shutdown.connect
def _never_returns(sender=None, **kwargs):
    _append(SIGNAL_LOG, f"worker_shutdown {os.getpid()}")
    threading.Event().wait()
"""


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_second_signal_ends_a_stop_that_hangs_after_the_tasks(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, pool: str
) -> None:
    """A worker whose stop hangs once its tasks are done (here a ``worker_shutdown`` receiver
    that never returns): a second SIGTERM ends the process at once, exit code 1, saying so
    (``cold_shutdown_exit``); before, it only set a flag nobody read any more."""
    (tasks_module.dir / "stuck.py").write_text(STUCK_SOURCE)
    argv = [sys.executable, "-m", "celeriac", "-A", "stuck", "worker", "-b", broker_url]
    argv += ["-P", pool, "-c", "1", "--embedded-hub", "always", "--log-format", "json"]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tasks_module.dir.parent / "embedded-hub"))
    worker = procs.spawn(pool, argv, cwd=tasks_module.dir, env=env)
    wait_for_event(worker.log, "worker_ready", proc=worker)
    worker.popen.send_signal(signal.SIGTERM)

    def hanging() -> bool:
        return tasks_module.signal_log.exists() and f"worker_shutdown {worker.pid}" in (
            tasks_module.signal_log.read_text()
        )

    wait_until(hanging, RESULT_TIMEOUT, "the worker_shutdown receiver", worker)
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.wait(RESULT_TIMEOUT) == 1
    assert count_events(worker.log, "cold_shutdown_exit") == 1
