"""End to end, real processes: tasks with results through one hub on SQLite, one hub on
PostgreSQL, and two shared hubs on PostgreSQL (issue 14).

Each set-up runs two thread workers (``-c 4``) and two clients in this process, publishing
``--tasks`` ``add`` tasks between them and waiting for every result. One hub: both workers
and both clients on it. Two hubs: one worker and one client on each (each client's tasks run
on either worker). Prints tasks per second, publish to last result, then the latency of one
task at a time (publish to result, ``--latency`` of them, alternating clients): median and
99th percentile::

    python benchmarks/pg_hubs_e2e.py --tasks 4000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from celeriac import App

PG = "postgresql://127.0.0.1:5432/test"
TASKS = """
from celeriac import App
app = App("e2e")

@app.task(name="e2e.add")
def add(x, y):
    return x + y
"""


def _port() -> int:
    return random.SystemRandom().randrange(20_000, 30_000, 2)


def _wait_line(path: Path, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in {path} after {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def processes(tmp: Path, store: str | None, hubs: int) -> Iterator[list[str]]:
    """Start ``hubs`` hubs (shared when several) and two workers; yield the hub URLs."""
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "CELERIAC_WORKER_EMBEDDED_HUB": "never", "PYTHONPATH": str(tmp)}
    urls = [f"tcp://127.0.0.1:{_port()}" for _ in range(hubs)]
    try:
        for i, url in enumerate(urls):
            argv = [sys.executable, "-m", "celeriac", "hub", "--bind", url, "--log-format", "json"]
            argv += ["--data-dir", str(tmp / f"hub{i}")]
            if store:
                argv += ["--store", store] + (["--shared"] if hubs > 1 else [])
            log = tmp / f"hub{i}.log"
            procs.append(
                subprocess.Popen(
                    argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=tmp
                )
            )
            _wait_line(log, "hub_started")
        for i in range(2):
            url = urls[i % hubs]
            argv = [sys.executable, "-m", "celeriac", "-A", "e2e_tasks", "worker", "--broker"]
            argv += [url, "-c", "4", "--log-format", "json", "-l", "INFO"]
            log = tmp / f"worker{i}.log"
            procs.append(
                subprocess.Popen(
                    argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=tmp
                )
            )
            _wait_line(log, "worker_ready")
        yield urls
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def measure(store: str | None, hubs: int, tasks: int, probes: int) -> tuple[float, list[float]]:
    """Tasks per second, first publish to last result; then ``probes`` latencies (s)."""
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    url = f"{PG}?schema={schema}" if store else None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "e2e_tasks.py").write_text(textwrap.dedent(TASKS))
        try:
            with processes(tmp, url, hubs) as urls:
                clients = [App(f"c{i}", broker=urls[i % hubs], environ={}) for i in range(2)]
                try:
                    start = time.perf_counter()
                    results = [
                        clients[i % 2].send_task("e2e.add", args=(i, 1)) for i in range(tasks)
                    ]
                    for i, r in enumerate(results):
                        assert r.get(timeout=300) == i + 1
                    rate = tasks / (time.perf_counter() - start)
                    latencies = []
                    for i in range(probes):
                        began = time.perf_counter()
                        assert clients[i % 2].send_task("e2e.add", (i, 1)).get(timeout=60) == i + 1
                        latencies.append(time.perf_counter() - began)
                    return rate, latencies
                finally:
                    for c in clients:
                        c.close()
        finally:
            if store:
                with psycopg.connect(PG, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    """Run the three set-ups ``--rounds`` times, interleaved, and print tasks per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=int, default=200, help="tasks one at a time")
    args = parser.parse_args()
    setups = {"1 hub sqlite": (None, 1), "1 hub pg": (PG, 1), "2 hubs pg": (PG, 2)}
    rates: dict[str, list[float]] = {name: [] for name in setups}
    waits: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, (store, hubs) in setups.items():
            rate, latencies = measure(store, hubs, args.tasks, args.latency)
            rates[name].append(rate)
            waits[name] += latencies
            print(f"{name:14s} {rate:8.0f} tasks/s", flush=True)
    for name, values in rates.items():
        ms = sorted(w * 1000 for w in waits[name]) or [0.0]
        p50, p99 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(
            f"{name:14s} best {max(values):6.0f}  all "
            + " ".join(f"{v:.0f}" for v in values)
            + f"  latency p50 {p50:.1f} ms p99 {p99:.1f} ms"
        )


if __name__ == "__main__":
    main()
