"""Soak tests (``-m slow``, not in the default run): many kill -9s of workers and the hub, and a
long fuzz of the hub's port; each bounded in count and time."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import msgpack
import pytest
import zmq

from celeriac import App
from celeriac.transport.frames import TAG

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    TaskModule,
    clean_env,
    wait_for_event,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TASKS, TASK_SECONDS, ROUNDS = 300, 0.05, 6


def _worker(procs: Spawner, url: str, module: TaskModule) -> Proc:
    """A worker that only ever connects (never runs a hub of its own when the hub is down)."""
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", url]
    argv += ["--embedded-hub", "never", "-c", "2", "--log-format", "json", "-l", "INFO"]
    proc = procs.spawn("worker", argv, cwd=module.dir, env=clean_env())
    wait_for_event(proc.log, "worker_ready", proc=proc)
    return proc


def test_kill_9_soak_of_workers_and_hub_loses_no_task(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, client: App, tmp_path: Path
) -> None:
    """300 tasks while workers are kill -9'd and restarted 6 times, the hub twice: all finish."""
    data = tmp_path / "hub-data"
    hub = procs.hub(broker_url, data)
    workers = [_worker(procs, broker_url, tasks_module) for _ in range(2)]
    results = [client.send_task("itasks.record", [TASK_SECONDS]) for _ in range(TASKS)]
    client.flush(RESULT_TIMEOUT)
    for n in range(ROUNDS):
        progress = (n + 1) * TASKS // (ROUNDS + 2)
        wait_until(
            lambda progress=progress: len(set(tasks_module.ended())) >= progress,
            RESULT_TIMEOUT * 2,
            f"{progress} tasks to finish (round {n})",
        )
        slot = n % len(workers)
        workers[slot].kill9()
        if n in (1, 4):
            hub.kill9()
            hub = procs.hub(broker_url, data)
        workers[slot] = _worker(procs, broker_url, tasks_module)
    pids = [r.get(timeout=RESULT_TIMEOUT * 4) for r in results]
    assert all(isinstance(pid, int) for pid in pids)
    assert {r.id for r in results} <= set(tasks_module.ended())
    assert len(set(pids)) >= 3  # the work was spread over restarted workers


def test_long_fuzz_of_the_hub_port_leaves_it_serving(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, client: App, tmp_path: Path
) -> None:
    """5,000 random and mutated messages from 50 peers: the hub stays up and still serves."""
    hub = procs.hub(broker_url, tmp_path / "hub-data")
    procs.worker(broker_url, cwd=tasks_module.dir, env=clean_env())
    rng = random.Random(20261201)
    commands = [b"PUB", b"HELLO", b"DONE", b"REJ", b"CRED", b"WAIT", b"STAT", b"PING", b"NOPE"]
    ctx = zmq.Context()
    peers = []
    try:
        for _ in range(50):
            peer = ctx.socket(zmq.DEALER)
            peer.setsockopt(zmq.LINGER, 0)
            peer.connect(broker_url)
            peers.append(peer)
        deadline = time.monotonic() + 120
        for i in range(5_000):
            assert time.monotonic() < deadline, f"sending took over 120 s (at {i})"
            header = {
                rng.choice(["id", "queue", "credit", "ids", "x"]): rng.choice(
                    [1, -1, "a", "", None, [1], {"k": 1}, 2**40, b"\xff"]
                )
                for _ in range(rng.randrange(4))
            }
            frames = [
                rng.choice([TAG, b"XXX9", b""]),
                rng.choice(commands),
                rng.choice([msgpack.packb(header), rng.randbytes(rng.randrange(40))]),
                rng.randbytes(rng.randrange(60)),
            ][: rng.randrange(1, 5)]
            rng.choice(peers).send_multipart(frames)
    finally:
        for peer in peers:
            peer.close(0)
        ctx.term()
    assert client.send_task("itasks.add", [2, 3]).get(timeout=RESULT_TIMEOUT) == 5
    assert hub.popen.poll() is None
