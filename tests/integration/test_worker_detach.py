"""`celeriac worker -D/--detach`: a daemon with its log and pid files, Celery's option."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from celeriac import App

from .conftest import TaskModule, clean_env, embed_if_free, wait_for_event, wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_detached_worker_runs_in_the_background_and_cleans_up(
    tasks_module: TaskModule, broker_url: str, client: App, tmp_path: Path
) -> None:
    """-D returns at once; the daemon writes its pid file, logs to --logfile, runs tasks, and a
    SIGTERM stops it and removes the pid file. A second -D with the same pid file is refused."""
    log, pidfile = tmp_path / "daemon.log", tmp_path / "daemon.pid"
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker_url]
    argv += embed_if_free(broker_url)  # given --broker, auto would wait for a hub
    argv += ["-c", "1", "--log-format", "json", "-D", "-f", str(log), "--pidfile", str(pidfile)]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "hub"))
    started = subprocess.run(
        argv, cwd=tasks_module.dir, env=env, capture_output=True, timeout=TIMEOUT, check=False
    )
    assert started.returncode == 0, started.stderr
    assert b"detaching" in started.stderr
    pid = 0
    try:
        wait_until(pidfile.exists, TIMEOUT, "the pid file")
        pid = int(pidfile.read_text())
        assert pid != os.getpid()
        assert _alive(pid)
        wait_for_event(log, "worker_ready")
        assert client.send_task("itasks.add", args=(2, 3)).get(timeout=TIMEOUT) == 5
        again = subprocess.run(
            argv, cwd=tasks_module.dir, env=env, capture_output=True, timeout=TIMEOUT, check=False
        )
        assert again.returncode == 2
        assert b"names a running process" in again.stderr
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not _alive(pid), TIMEOUT, "the daemon to stop")
        assert not pidfile.exists()
    finally:
        if pid and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
