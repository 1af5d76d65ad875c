"""Keyed actor round trips against plain task round trips (issue 12's benchmark).

Starts a standalone hub (``celeriac hub``, SQLite store in a temporary folder) and one worker
(``celeriac -A keyed_app worker -P threads -c 2``) as subprocesses on loopback, then measures
from this process:

- sequential round trips (send, ``get()``, next): calls per second and p50/p90 latency of
  ``proxy.incr(1).get()`` (no state hooks, and with save_state/load_state) against
  ``incr.delay(1).get()``;
- pipelined: N calls sent at once then all awaited, to one key (the hub runs them one at a time,
  in order) and spread over 100 keys, against N tasks.

Usage: ``python benchmarks/keyed.py [--calls 1000] [--pipelined 2000]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _sequential(call: Callable[[], Any], n: int) -> tuple[float, float, float]:
    """(calls/s, p50 ms, p90 ms) of n round trips one after the other."""
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=10)
    return n / elapsed, statistics.median(latencies) * 1000, q[8] * 1000


def _pipelined(send: Callable[[int], Any], n: int) -> float:
    """Calls per second of n sends then n gets."""
    start = time.perf_counter()
    handles = [send(i) for i in range(n)]
    for h in handles:
        h.get(timeout=120)
    return n / (time.perf_counter() - start)


def main() -> None:
    """Start hub and worker, measure, print the table, stop them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="sequential round trips")
    parser.add_argument("--pipelined", type=int, default=2000, help="calls sent at once")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from keyed_app import Counter, SavedCounter, app, incr  # noqa: PLC0415

    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    procs = []
    with tempfile.TemporaryDirectory() as data:
        try:
            hub = [sys.executable, "-m", "celeriac", "hub", "--bind", url, "--data-dir", data]
            procs.append(subprocess.Popen(hub, env=env, stderr=subprocess.DEVNULL))
            worker = [sys.executable, "-m", "celeriac", "-A", "keyed_app", "worker"]
            worker += ["--broker", url, "-P", "threads", "-c", "2", "-l", "WARNING"]
            procs.append(subprocess.Popen(worker, cwd=HERE, env=env, stderr=subprocess.DEVNULL))
            app.conf.broker_url = url
            incr.delay(1).get(timeout=60)  # both up
            counter = app.proxy(Counter, key="k")
            saved = app.proxy(SavedCounter, key="k")
            counter.incr(1).get(timeout=60)
            saved.incr(1).get(timeout=60)
            rows = [
                (
                    "plain task `incr.delay(1).get()`",
                    _sequential(lambda: incr.delay(1).get(timeout=30), args.calls),
                ),
                (
                    "actor `proxy.incr(1).get()`",
                    _sequential(lambda: counter.incr(1).get(timeout=30), args.calls),
                ),
                (
                    "actor with save/load state",
                    _sequential(lambda: saved.incr(1).get(timeout=30), args.calls),
                ),
            ]
            n = args.pipelined
            keys = [app.proxy(Counter, key=f"k{i}") for i in range(100)]
            piped = [
                ("plain task", _pipelined(lambda i: incr.delay(1), n)),
                ("actor, one key", _pipelined(lambda i: counter.incr(1), n)),
                ("actor, 100 keys", _pipelined(lambda i: keys[i % 100].incr(1), n)),
            ]
        finally:
            app.close()
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(30)
    print(f"Sequential round trips ({args.calls} each), one worker -P threads -c 2:\n")
    print("| call | calls/s | p50 ms | p90 ms |\n|---|---|---|---|")
    for name, (rate, p50, p90) in rows:
        print(f"| {name} | {rate:,.0f} | {p50:.2f} | {p90:.2f} |")
    print(f"\nPipelined ({n} sent, then all awaited):\n")
    print("| calls | calls/s |\n|---|---|")
    for name, rate in piped:
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
