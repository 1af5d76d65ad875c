"""``--autoscale MAX,MIN`` on the prefork pool: grows with a burst, shrinks back when idle."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from celeriac import App
from celeriac.runtime.prefork import PreforkNode

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    clean_env,
    embed_if_free,
    read_events,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration

TASKS_SOURCE = '''
"""Tasks for the autoscale tests."""

import os
import time

from celeriac import App

app = App("astasks")


@app.task(name="as.nap")
def nap(seconds):
    time.sleep(seconds)
    return os.getpid()


@app.task(name="as.nap_timed")
def nap_timed(seconds):
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes
    time.sleep(seconds)
    return [os.getpid(), start, time.monotonic()]
'''

#: Tasks in a burst and how long each takes: 8 s if run one at a time.
BURST, TASK_SECONDS = 8, 1.0


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A directory holding ``astasks.py`` (the workers' cwd)."""
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "astasks.py").write_text(textwrap.dedent(TASKS_SOURCE))
    return directory


def start(
    procs: Spawner, app_dir: Path, url: str, *extra: str, env: dict[str, str] | None = None
) -> Proc:
    """Start ``celeriac worker -P prefork`` with ``extra`` options and wait until it is ready."""
    argv = [sys.executable, "-m", "celeriac", "-A", "astasks", "worker", "-P", "prefork"]
    argv += ["--broker", url, "--log-format", "json", "-l", "INFO", *extra]
    argv += embed_if_free(url)  # given --broker, auto would wait for a hub
    hub_dir = str(procs.tmp_path / "hub")
    proc = procs.spawn(
        "prefork", argv, cwd=app_dir, env=clean_env(CELERIAC_HUB_DATA_DIR=hub_dir, **env or {})
    )
    wait_for_event(proc.log, "worker_ready", proc=proc)
    return proc


def events(proc: Proc, name: str) -> list[dict[str, Any]]:
    """The log records of one event."""
    return [r for r in read_events(proc.log) if r.get("event") == name]


def parent_children(proc: Proc) -> list[dict[str, Any]]:
    """The parent's child_started records (the slot actors' have a ``supervisor`` key)."""
    return [r for r in events(proc, "child_started") if "supervisor" not in r]


def test_burst_grows_the_pool_and_finishes_faster_than_serially(
    procs: Spawner, app_dir: Path, broker_url: str, client: App
) -> None:
    """--autoscale 4,1 (-c 3 ignored): a burst of 1 s tasks runs on several children at once.

    That the burst ends sooner than serially is the overlap asserted here; by how much is the
    neighbours' business on a shared 2-core machine (the benchmarks measure it).
    """
    node = start(procs, app_dir, broker_url, "--autoscale", "4,1", "-c", "3")
    ready = events(node, "worker_ready")[0]
    assert (ready["concurrency"], ready["autoscale"]) == (1, [4, 1])
    assert events(node, "autoscale_overrides_concurrency")
    results = [client.send_task("as.nap_timed", [TASK_SECONDS]) for _ in range(BURST)]
    spans = [tuple(r.get(timeout=RESULT_TIMEOUT)) for r in results]
    pids = [pid for pid, _, _ in spans]
    grows = events(node, "autoscale_grow")
    assert len(set(pids)) > 1
    assert any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in spans for b in spans), (
        f"no two tasks of different children overlapped: {spans}"
    )
    assert grows
    assert [g["procs"] for g in grows] == list(range(2, len(grows) + 2))
    assert max(g["procs"] for g in grows) <= 4
    assert len(parent_children(node)) == len(grows) + 1  # no child died and was replaced
    assert not events(node, "autoscale_shrink")  # keepalive is 30 s by default


def test_idle_children_leave_down_to_min(
    procs: Spawner, app_dir: Path, broker_url: str, client: App
) -> None:
    """Keepalive 1 s: after a burst the pool shrinks back to MIN; the children exit cleanly."""
    env = {"CELERIAC_WORKER_AUTOSCALE_KEEPALIVE": "1"}
    node = start(procs, app_dir, broker_url, "--autoscale", "3,1", env=env)
    results = [client.send_task("as.nap", [TASK_SECONDS]) for _ in range(4)]
    for r in results:
        r.get(timeout=RESULT_TIMEOUT)
    grown = wait_until(lambda: events(node, "autoscale_grow"), 10, "the pool to grow", node)
    wait_until(
        lambda: (s := events(node, "autoscale_shrink")) and s[-1]["procs"] == 1,
        15,
        "the pool to shrink back to 1",
        node,
    )
    shrinks = events(node, "autoscale_shrink")
    peak = max(g["procs"] for g in grown)
    assert [s["procs"] for s in shrinks] == list(range(peak - 1, 0, -1))
    assert all(s["idle_for"] >= 1.0 for s in shrinks)
    left = {s["pid"] for s in shrinks}
    wait_until(
        lambda: left <= {r["pid"] for r in events(node, "child_exited")},
        10,
        "the idle children to exit",
        node,
    )
    exits = [r for r in events(node, "child_exited") if r["pid"] in left]
    assert all(r.get("exit_code") == 0 and r["reason"].startswith("autoscale") for r in exits)
    assert not events(node, "child_replaced")  # a child that left is not replaced
    assert client.send_task("as.nap", [0]).get(timeout=RESULT_TIMEOUT) > 0  # still serving


@pytest.mark.parametrize(
    ("value", "pool", "message"),
    [
        ("2,4", "prefork", "MAX must be >= MIN"),
        ("4,0", "prefork", "MIN must be 1 or more"),
        ("four", "prefork", "is not MAX,MIN"),
        ("4,2,1", "prefork", "is not MAX,MIN"),
        ("4,1", "threads", "use -P prefork for --autoscale"),
        ("4,1", "asyncio", "--autoscale needs -P prefork"),
    ],
)
def test_bad_autoscale_values_are_clear_cli_errors(
    app_dir: Path, value: str, pool: str, message: str
) -> None:
    """Bad --autoscale values (or a pool other than prefork) exit 2 with a message saying why."""
    argv = [sys.executable, "-m", "celeriac", "-A", "astasks", "worker", "-P", pool]
    argv += ["--autoscale", value, "--broker", "tcp://127.0.0.1:1"]
    done = subprocess.run(
        argv, check=False, cwd=app_dir, env=clean_env(), capture_output=True, timeout=30
    )
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert message in stderr
    assert "--autoscale" in stderr


def test_statistics_show_the_autoscale_bounds() -> None:
    """PreforkNode.statistics() reports the current count and MIN/MAX of the autoscaler."""
    node = PreforkNode(App("stats", environ={}), app_spec="astasks", autoscale=(6, 2))
    try:
        stats = node.statistics()
    finally:
        node._ctx.destroy(linger=0)
    assert stats["concurrency"] == 2
    assert stats["autoscaler"] == {
        "current": 2,
        "min": 2,
        "max": 6,
        "keepalive": 30.0,
        "grow_after": 0.5,
    }
