"""A hub that cannot start says why in one line and exits 2 (no traceback)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import clean_env

pytestmark = pytest.mark.integration


def _hub(tmp_path: Path, url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "celeriac", "hub", "--bind", url, "--data-dir", str(data_dir)]
    return subprocess.run(
        argv, check=False, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60
    )


def test_an_unusable_data_dir_is_one_line_and_exit_code_2(tmp_path: Path, broker_url: str) -> None:
    """A data dir below a regular file: exit 2, one 'Error:' line naming the directory."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = _hub(tmp_path, broker_url, blocker / "data")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "cannot use the data directory" in errors[0]


def test_a_port_in_use_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """Something listens on the port already: exit 2 and the reason, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _hub(tmp_path, f"tcp://127.0.0.1:{port}", tmp_path / "data")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "address is in use" in done.stderr
