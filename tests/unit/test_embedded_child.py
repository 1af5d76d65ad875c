"""The embedded hub process's start-up helpers: who holds the data directory, and whether that
process is exiting (a worker's hub child killed with it) or alive (refused at once)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from celeriac._conf import Settings
from celeriac.runtime.embedded_child import _exiting, _lock_holder, _wait_for_exiting_holder
from celeriac.transport.hubfiles import lock_data_dir, release_lock


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_a_live_process_is_not_exiting() -> None:
    assert not _exiting(os.getpid())


def test_a_zombie_and_a_reaped_process_are_exiting() -> None:
    child = subprocess.Popen(["true"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
    assert _state(child.pid) == "Z"
    assert _exiting(child.pid)
    child.wait()
    assert _exiting(child.pid)


def test_the_lock_holder_is_read_from_a_held_lock(tmp_path: Path) -> None:
    assert _lock_holder(tmp_path / "hub.lock") is None  # no file yet
    handle = lock_data_dir(tmp_path)
    try:
        assert _lock_holder(tmp_path / "hub.lock") == os.getpid()
    finally:
        release_lock(handle)
    assert _lock_holder(tmp_path / "hub.lock") is None


def test_a_live_holder_is_not_waited_for(tmp_path: Path) -> None:
    """A hub that serves on the directory is refused by the hub's own lock, without a wait."""
    handle = lock_data_dir(tmp_path)
    try:
        began = time.monotonic()
        _wait_for_exiting_holder(Settings({"hub_data_dir": str(tmp_path)}))
        assert time.monotonic() - began < 1.0
    finally:
        release_lock(handle)
