"""A standalone hub and the workers that use it, started as one command (the benchmark's
``standalone-*`` configurations; the harness starts one process per configuration).

    python standalone_node.py [--workers N] BROKER DATA_DIR -- celeriac -A tasks worker ...

Starts ``celeriac hub --bind BROKER --data-dir DATA_DIR``, waits until it listens, then
``N`` worker processes (default 1; the scaling configurations run 1, 2 and 4) with
``--embedded-hub never``, each named ``<-n>-<i>`` when there are several. All die with this
process (``PR_SET_PDEATHSIG``, so a kill -9 of this launcher does not leave a hub holding the
port), and when one exits the others are stopped. The harness measures memory over the
process tree, so the hub is counted.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from cpu_split import stop_processes

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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _named(argv: list[str], i: int, count: int) -> list[str]:
    """The worker argv with ``-n NAME`` made ``NAME-i`` when there are several workers."""
    if count == 1 or "-n" not in argv:
        return argv
    at = argv.index("-n") + 1
    return [*argv[:at], f"{argv[at]}-{i + 1}", *argv[at + 1 :]]


def main() -> None:
    """Start the hub, then the workers; stop all when one ends or on SIGTERM/SIGINT."""
    args = sys.argv[1:]
    count = 1
    if args[:1] == ["--workers"]:
        count, args = int(args[1]), args[2:]
    broker, data_dir, sep, *worker = args
    if sep != "--" or not worker or count < 1:
        sys.exit(__doc__)
    celeriac = worker[: worker.index("-A")]  # `celeriac` or `python -m celeriac`
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    hub = subprocess.Popen(
        [*celeriac, "hub", "--bind", broker, "--data-dir", data_dir, "-l", "warning"],
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - the launcher is single-threaded
    )
    _wait_listening(broker, hub)
    nodes = [
        subprocess.Popen(
            [*_named(worker, i, count), "--embedded-hub", "never"],
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        for i in range(count)
    ]
    children = (*nodes, hub)

    def stop(signum: int, _frame: FrameType | None) -> None:
        # Where the CPU went (issue 18: is the hub's core the limit?), in the worker log.
        cpu = {"hub": _cpu_seconds(hub.pid), "workers": sum(_cpu_seconds(n.pid) for n in nodes)}
        print(f"standalone_node cpu_seconds {cpu}", file=sys.stderr, flush=True)
        stop_processes(children, timeout=10)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    stop(signal.SIGTERM, None)


if __name__ == "__main__":
    main()
