"""The event stream: a task's life in order through ``celeriac events --dump``, and an
in-memory State built from a run of 100 tasks (issue 9)."""

from __future__ import annotations

import contextlib
import json
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.events import State

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    clean_env,
    complete_lines,
    embed_if_free,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration

TASKS = '''
"""Tasks for the event tests."""

from celeriac import App

app = App("evtasks")


@app.task(name="ev.add")
def add(x, y):
    return x + y


@app.task(name="ev.fail")
def fail():
    raise ValueError("on purpose")
'''


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A directory holding ``evtasks.py``."""
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "evtasks.py").write_text(textwrap.dedent(TASKS))
    return directory


def _worker(procs: Spawner, app_dir: Path, url: str, *extra: str) -> Proc:
    argv = [sys.executable, "-m", "celeriac", "-A", "evtasks", "worker", "--broker", url]
    argv += embed_if_free(url)  # given --broker, auto would wait for a hub
    argv += ["-n", "ev@x", "-c", "2", "--log-format", "json", "-l", "INFO", *extra]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(procs.tmp_path / "hub"))
    proc = procs.spawn("worker", argv, cwd=app_dir, env=env)
    wait_for_event(proc.log, "worker_ready", proc=proc)
    return proc


def _dumped(proc: Proc) -> list[dict[str, Any]]:
    lines = complete_lines(proc.log.with_suffix(".out"))
    return [json.loads(line) for line in lines if line.startswith("{")]


def _life_of(dump: Proc, task_id: str) -> list[dict[str, Any]] | None:
    """The dumped events of one task once its task-succeeded is there."""
    mine = [e for e in _dumped(dump) if e.get("uuid") == task_id]
    return mine if mine and mine[-1]["type"] == "task-succeeded" else None


def test_events_dump_shows_a_tasks_life_in_order(
    procs: Spawner, app_dir: Path, broker_url: str
) -> None:
    """With -E and task_send_sent_event, `celeriac events --dump` prints task-sent,
    task-received, task-started, task-succeeded (runtime, result) for one task, once each."""
    _worker(procs, app_dir, broker_url, "-E")
    argv = [sys.executable, "-m", "celeriac", "-A", "evtasks", "events", "--dump"]
    argv += ["--broker", broker_url, "--timeout", "60"]
    dump = procs.spawn("events", argv, cwd=app_dir, env=clean_env())
    wait_until(
        lambda: any(e["type"] == "worker-heartbeat" for e in _dumped(dump)),
        30,
        "the dump to show a worker heartbeat (subscribed)",
        dump,
    )
    client = App("client", broker=broker_url, environ={})
    client.conf.task_send_sent_event = True
    try:
        result = client.send_task("ev.add", [2, 3])
        assert result.get(timeout=RESULT_TIMEOUT) == 5
        mine = wait_until(
            lambda: _life_of(dump, result.id),
            20,
            "task-succeeded in the dump",
            dump,
        )
    finally:
        client.close()
    assert [e["type"] for e in mine] == [
        "task-sent",
        "task-received",
        "task-started",
        "task-succeeded",
    ]
    assert mine[0]["name"] == "ev.add"
    assert mine[1]["hostname"] == "ev@x"
    assert mine[3]["result"] == "5"
    assert mine[3]["runtime"] >= 0


@contextlib.contextmanager
def monitored(broker_url: str) -> Iterator[tuple[App, State]]:
    """A client and a State fed by its events Receiver in a thread, closed on the way out."""
    client = App("client", broker=broker_url, environ={})
    state = State()
    receiver = client.events.Receiver()

    def run() -> None:
        for event in receiver.itercapture(timeout=60):
            state.event(event)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield client, state
    finally:
        receiver.should_stop = True
        thread.join(5)
        receiver.close()
        client.close()


def test_state_from_100_tasks_has_the_right_counts(
    procs: Spawner, app_dir: Path, broker_url: str
) -> None:
    """A State fed by app.events.Receiver over a run of 90 successes and 10 failures counts
    90 SUCCESS and 10 FAILURE tasks, and knows the worker."""
    _worker(procs, app_dir, broker_url, "-E")
    with monitored(broker_url) as (client, state):
        wait_until(lambda: "ev@x" in state.workers, 30, "a worker-heartbeat")
        results = [client.send_task("ev.add", [i, i]) for i in range(90)]
        results += [client.send_task("ev.fail") for _ in range(10)]
        for r in results:
            r.get(timeout=RESULT_TIMEOUT, propagate=False)
        wait_until(
            lambda: state.tasks_by_state() == {"SUCCESS": 90, "FAILURE": 10},
            20,
            f"90 SUCCESS and 10 FAILURE (now {state.tasks_by_state()})",
        )
    failed = [t for t in state.tasks.values() if t.state == "FAILURE"]
    assert all(t.exception and "on purpose" in t.exception for t in failed)
    assert state.tasks_by_worker()["ev@x"] == {"SUCCESS": 90, "FAILURE": 10}
    assert state.workers["ev@x"].alive


def test_a_prefork_node_is_one_worker_to_monitors(
    procs: Spawner, app_dir: Path, broker_url: str, tmp_path: Path
) -> None:
    """A prefork node shows as one worker (its parent's heartbeats and offline event), not as
    one worker per child."""
    procs.hub(broker_url, tmp_path / "hubdata")
    _worker(procs, app_dir, broker_url, "-P", "prefork")
    with monitored(broker_url) as (client, state):
        wait_until(lambda: "ev@x" in state.workers, 30, "the node's heartbeat")
        client.control.shutdown(destination=["ev@x"], reply=True, timeout=3)
        wait_until(lambda: not state.workers["ev@x"].alive, 30, "the node's worker-offline")
    assert set(state.workers) == {"ev@x"}
    assert state.counts["worker-offline"] == 1
