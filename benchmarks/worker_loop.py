"""A worker process's CPU per task, fed by a stand-in hub: no producer, no store, less noise.

Starts one real worker (``celeriac -A celeriac_tasks worker -P threads -c 2``, the benchmark's
tasks, ``worker_prefetch_multiplier`` 128 unless ``--multiplier``) against a ROUTER socket in
this process that plays the hub: it welcomes the worker, answers its pings, and sends ``TASK``
messages (at most ``--batch`` deliveries each, never more than the worker's credit) built in
advance, as fast as the ``DONE`` messages return credit. The hub's own work is left out, so
the worker's CPU per task (read from /proc, with its context switches) is steadier than in
``cpu_split.py``, where three processes share the cores::

    python benchmarks/worker_loop.py --tasks 20000 [--batch 64] [--runs 3]

Prints, per workload (``noop``, ``add``), the best run's CPU µs per task of the worker, its
context switches and its read/write system calls per task (``r+w``: the noop's counter file is
one), and the mean deliveries per ``TASK`` and outcomes per ``DONE``.
Needs the shared harness (``--bench-dir``) for the noop's counter file, as ``cpu_split.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import zmq

from celeriac._compose import compose
from celeriac.transport import protocol as p
from celeriac.transport.multipart import recv_frames, send_frames

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cpu_split import _cpu, _switches


def _threads(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a live process, by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _io_calls(pid: int) -> int:
    """Read and write system calls of a live process so far (``/proc/<pid>/io``: syscr +
    syscw): the harness's counter file, the doorbells (eventfd) and libzmq's signalers."""
    fields = dict(ln.split(": ") for ln in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["syscr"]) + int(fields["syscw"])


class FakeHub:
    """The hub's side of one worker connection: welcome, pings, credit and deliveries."""

    def __init__(self, sock: zmq.Socket[Any], batch: int) -> None:
        self.sock = sock
        self.batch = batch
        self.identity: bytes | None = None
        self.credit = 0
        self.done = 0
        self.sent_messages = 0
        self.done_messages = 0
        self.rejected = 0
        #: What waits to be delivered, and what was delivered (task id -> frames).
        self.pending: deque[tuple[str, list[bytes]]] = deque()
        self.sent: dict[str, tuple[str, list[bytes]]] = {}

    def _send(self, message: p.Message) -> None:
        assert self.identity is not None
        send_frames(self.sock, [self.identity, *p.encode(message)])

    def _handle(self, frames: list[bytes]) -> None:
        identity, frames = frames[0], frames[1:]
        message = p.decode(frames)
        if isinstance(message, p.Hello):
            self.identity, self.credit = identity, message.credit
            self._send(p.Welcome("fake-hub", 2.0, message.node))
        elif isinstance(message, p.Done):
            self.done_messages += 1
            self.done += len(message.results)
            self.credit += sum(r.credit for r in message.results)
        elif isinstance(message, p.Ping):
            self._send(p.Pong("fake-hub", True))
        elif isinstance(message, p.Credit):
            self.credit += message.credit
        elif isinstance(message, p.Reject):  # given back (a stalled prefetch): deliver again
            self.rejected += 1
            for rejection in message.rejections:
                self.credit += rejection.credit
                self.pending.appendleft(self.sent[rejection.id])

    def run(self, groups: list[tuple[str, list[bytes]]], timeout: float = 300.0) -> None:
        """Deliver every group (a task id, its delivery's frames); wait for each outcome."""
        want = self.done + len(groups)
        self.pending.extend(groups)
        self.sent = {}
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        pending = self.pending
        while self.done < want:
            if time.monotonic() > deadline:
                sys.exit(f"outcomes: {self.done} of {want} within {timeout:.0f}s")
            if self.identity is not None and self.credit > 0 and pending:
                # Merged as the hub merges a turn's deliveries (packed: celeriac._wire_items).
                queue: deque[list[bytes]] = deque()
                for _ in range(min(self.credit, self.batch, len(pending))):
                    group = pending.popleft()
                    self.sent[group[0]] = group
                    queue.append([p.TAG, b"TASK", *group[1]])
                    self.credit -= 1
                while queue:
                    send_frames(self.sock, [self.identity, *p.next_batch(queue)])
                self.sent_messages += 1
            if poller.poll(0 if self.credit and pending else 100):
                while self.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    self._handle(recv_frames(self.sock))


def _groups(app: Any, name: str, args: list[Any], n: int) -> list[tuple[str, list[bytes]]]:
    """``n`` deliveries of ``name(*args)``: task id, the hub's ``TASK`` frames (3 each)."""
    task = app.tasks[name]
    out = []
    for _ in range(n):
        message = compose(app.conf, name, args, {}, {}, time.time(), task=task)
        frames = p.encode(p.Deliver((p.Delivery(message, message.queue or "celery"),)))
        out.append((message.id, frames[2:]))
    return out


def main() -> None:
    """Start the worker, feed it each workload ``--runs`` times, print the best."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--multiplier", type=int, default=128)
    parser.add_argument("--concurrency", "-c", type=int, default=2)
    parser.add_argument("--bench-dir", default=str(HERE.parent.parent / "shared" / "bench"))
    args = parser.parse_args()
    run = Path(tempfile.mkdtemp(prefix="worker-loop-"))
    harness = Path(args.bench_dir).resolve() / "harness"
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    broker = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(
        BENCH_BROKER=broker,
        ANCHORS_RUN=str(run),
        CELERIAC_WORKER_PREFETCH_MULTIPLIER=str(args.multiplier),
        PYTHONPATH=os.pathsep.join([str(HERE), str(harness)]),
    )
    os.environ.update(env)
    sys.path[:0] = [str(harness)]
    import celeriac_tasks as bench  # noqa: PLC0415 - after the environment is set

    celeriac = str(Path(sys.executable).parent / "celeriac")
    argv = [celeriac, "-A", "celeriac_tasks", "worker", "-P", "threads"]
    argv += [
        "-c",
        str(args.concurrency),
        "-l",
        "WARNING",
        "-n",
        "loop",
        "--broker",
        broker,
        "--embedded-hub",
        "never",
    ]
    log = open(run / "worker.log", "wb")  # noqa: SIM115 - closed at the end
    worker = subprocess.Popen(argv, env=env, cwd=run, stdout=log, stderr=log)
    hub = FakeHub(sock, args.batch)
    try:
        hub.run(_groups(bench.app, "bench.add", [1, 1], 500))  # warm-up
        print(f"one worker -P threads -c {args.concurrency}, a stand-in hub, TASK <= {args.batch}")
        print(
            f"{'workload':8s} {'CPU µs/task':>12s} {'switches/task':>14s} {'r+w/task':>9s} "
            f"{'per TASK':>9s} "
            f"{'per DONE':>9s}   µs/task by thread"
        )
        for name, targs in (("noop", []), ("add", [2, 3])):
            best: tuple[float, float, float, float, float, str] | None = None
            for _ in range(args.runs):
                groups = _groups(bench.app, f"bench.{name}", targs, args.tasks)
                sent, dones = hub.sent_messages, hub.done_messages
                cpu, cs, io = _cpu(worker.pid), _switches(worker.pid), _io_calls(worker.pid)
                threads = _threads(worker.pid)
                hub.run(groups)
                per = (_cpu(worker.pid) - cpu) / args.tasks * 1e6
                after = _threads(worker.pid)
                split = sorted(
                    ((after[t] - threads.get(t, 0.0)) / args.tasks * 1e6 for t in after),
                    reverse=True,
                )
                row = (
                    per,
                    (_switches(worker.pid) - cs) / args.tasks,
                    (_io_calls(worker.pid) - io) / args.tasks,
                    args.tasks / max(1, hub.sent_messages - sent),
                    args.tasks / max(1, hub.done_messages - dones),
                    " ".join(f"{x:.1f}" for x in split if x >= 0.5),
                )
                best = row if best is None or row < best else best
            assert best is not None
            print(
                f"{name:8s} {best[0]:12.1f} {best[1]:14.2f} {best[2]:9.2f} {best[3]:9.1f} "
                f"{best[4]:9.1f}   {best[5]}"
            )
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        ctx.destroy(linger=0)


if __name__ == "__main__":
    main()
