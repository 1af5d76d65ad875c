"""The getting-started example end to end, through the real CLI."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from celeriac import App

from .conftest import RESULT_TIMEOUT, Spawner, TaskModule, clean_env, wait_for_event

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GETTING_STARTED = EXAMPLES / "getting_started"

#: The client, as a user would write it: import the task and call it.
CLIENT = f"from tasks import add; print(add.delay(4, 4).get(timeout={RESULT_TIMEOUT!r}))"


def _run_client(url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT],
        cwd=GETTING_STARTED,
        env=clean_env(CELERIAC_BROKER_URL=url),
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT + 30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "a client that configured no logging hears nothing from celeriac"
    return done.stdout.strip()


def test_hub_and_worker_from_the_cli(procs: Spawner, broker_url: str, tmp_path: Path) -> None:
    """`celeriac hub` + `celeriac -A tasks worker` as processes: add.delay(4, 4).get() == 8."""
    procs.hub(broker_url, tmp_path / "hub-data")
    worker = procs.worker(broker_url, cwd=GETTING_STARTED, app="tasks")
    assert _run_client(broker_url) == "8"
    wait_for_event(worker.log, "using_hub", timeout=1)


def test_worker_with_embedded_hub(procs: Spawner, broker_url: str) -> None:
    """Only `celeriac -A tasks worker`: it starts an embedded hub, says so, and serves."""
    worker = procs.worker(broker_url, cwd=GETTING_STARTED, app="tasks")
    started = wait_for_event(worker.log, "embedded_hub_started", timeout=1)
    assert started["endpoint"] == broker_url
    assert _run_client(broker_url) == "8"


def test_second_worker_in_the_same_directory_joins_the_embedded_hub(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, client: App
) -> None:
    """A second worker started where the first runs its embedded hub uses it (no lock error)."""
    env = clean_env()  # no CELERIAC_HUB_DATA_DIR: both default to the same store
    first = procs.worker(broker_url, cwd=tasks_module.dir, env=env, name="first")
    wait_for_event(first.log, "embedded_hub_started", timeout=1)
    second = procs.worker(broker_url, cwd=tasks_module.dir, env=env, name="second")
    wait_for_event(second.log, "using_hub", timeout=1)
    assert client.send_task("itasks.add", [4, 4]).get(timeout=RESULT_TIMEOUT) == 8
    assert first.popen.poll() is None
    assert second.popen.poll() is None


def _descendants(pid: int) -> list[int]:
    """Pids of the live descendants of ``pid`` (children first), read from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 1000:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in children.read_text().split()]
            except OSError:
                continue  # the task ended while we read
            found += kids
            todo += kids
    return found


def test_quickstart_script(free_port: int, tmp_path: Path) -> None:
    """examples/quickstart.sh starts a worker, sends tasks and prints add(4, 4) = 8."""
    bindir = str(Path(sys.executable).parent)
    env = clean_env(
        QUICKSTART_PORT=str(free_port),
        TMPDIR=str(tmp_path),
        PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
    )
    script = subprocess.Popen(
        ["bash", str(EXAMPLES / "quickstart.sh")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = script.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        # Killing bash alone would leave the script's background worker running: its pid too.
        for pid in [*_descendants(script.pid), script.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stdout, stderr = script.communicate(timeout=10)
        pytest.fail(f"quickstart.sh did not finish within 90 s:\n{stdout}{stderr}")
    assert script.returncode == 0, stdout + stderr
    assert "add(4, 4) = 8" in stdout
