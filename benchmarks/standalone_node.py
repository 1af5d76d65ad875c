"""A standalone hub and a worker that uses it, started as one command (the benchmark's
``standalone-threads-c2`` configuration; the harness starts one process per configuration).

    python standalone_node.py BROKER DATA_DIR -- celeriac -A tasks worker ... (worker argv)

Starts ``celeriac hub --bind BROKER --data-dir DATA_DIR``, waits until it listens, then the
worker with ``--embedded-hub never``. Both die with this process (``PR_SET_PDEATHSIG``, so a
kill -9 of this launcher does not leave a hub holding the port), and when either exits the
other is stopped. The harness measures memory over the process tree, so the hub is counted.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait_listening(url: str, hub: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            sys.exit(f"the hub exited with {hub.returncode}")
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"the hub did not listen at {url} within {timeout:.0f}s")


def main() -> None:
    """Start the hub, then the worker; stop both when either ends or on SIGTERM/SIGINT."""
    broker, data_dir, sep, *worker = sys.argv[1:]
    if sep != "--" or not worker:
        sys.exit(__doc__)
    celeriac = worker[: worker.index("-A")]  # `celeriac` or `python -m celeriac`
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    hub = subprocess.Popen(
        [*celeriac, "hub", "--bind", broker, "--data-dir", data_dir, "-l", "warning"],
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - the launcher is single-threaded
    )
    _wait_listening(broker, hub)
    node = subprocess.Popen(
        [*worker, "--embedded-hub", "never"],
        preexec_fn=_die_with_parent,  # noqa: PLW1509
    )
    children = (node, hub)

    def stop(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    stop(signal.SIGTERM, None)


if __name__ == "__main__":
    main()
