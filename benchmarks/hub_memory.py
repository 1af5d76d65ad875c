"""How much RAM and disk the hub uses for queued tasks, and the hub's own per-task cost.

    python benchmarks/hub_memory.py queue --tasks 200000 --body 1024
        Starts a real ``celeriac hub`` (subprocess, temporary data dir), publishes that many
        tasks (nobody consumes them), and prints the hub's RSS and the data dir's size; then
        restarts the hub on the same dir and prints its RSS once the store is restored; then
        drains the queue with one worker and prints them again.
    python benchmarks/hub_memory.py throughput --tasks 20000 [--window 0]
        In-process: a :class:`HubState` over a real SQLite store, tasks published, delivered
        to one worker and acknowledged (noop results), one commit per turn, as the server
        does. Prints tasks per second (the hub's share of a noop task's cost).

Figures measured with it are in README's production section.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import zmq

from celeriac._clock import SystemClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store import SQLiteStore

BATCH = 500
WINDOW = 2  # PUB batches not yet confirmed (their CONF fits one header, on older hubs too)
_DECLARE = p.Declare(queues=(p.QueueDecl("celery"),))


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def _du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _free_port_pair() -> int:
    """A port free with the next one (the hub's events socket binds there)."""
    for _ in range(100):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no two free ports in a row")


def _start_hub(url: str, data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celeriac", "hub", "--bind", url, "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=(data / "hub.log").open("ab"),
    )


def _wait_welcome(ctx: zmq.Context[zmq.Socket[bytes]], url: str, timeout: float = 120.0) -> None:
    sock = ctx.socket(zmq.DEALER)
    sock.connect(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sock.send_multipart(p.encode(p.Hello(node="bench-probe")))
            if sock.poll(1000) and isinstance(p.decode(sock.recv_multipart()), p.Welcome):
                sock.send_multipart(p.encode(p.Bye()))
                return
        raise TimeoutError("the hub did not answer")
    finally:
        sock.close(linger=100)


def queue(tasks: int, body_size: int) -> None:
    """Publish ``tasks`` tasks to a real hub and report its RSS and disk use."""
    data = Path(tempfile.mkdtemp(prefix="celeriac-hubmem-"))
    url = f"tcp://127.0.0.1:{_free_port_pair()}"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    hub = _start_hub(url, data)
    try:
        _wait_welcome(ctx, url)
        rss0, _ = _rss_mb(hub.pid)
        print(f"hub started: RSS {rss0:.0f} MiB, data dir {_du_mb(data):.1f} MiB")
        sock = ctx.socket(zmq.DEALER)
        sock.connect(url)
        sock.send_multipart(p.encode(_DECLARE))
        body = b"x" * body_size
        sent = confirmed = 0
        t0 = time.monotonic()
        while confirmed < tasks:
            while sent < tasks and sent - confirmed < WINDOW * BATCH:
                n = min(BATCH, tasks - sent)
                batch = tuple(
                    p.TaskMessage(
                        id=str(uuid.uuid4()), task="bench.noop", body=body, queue="celery"
                    )
                    for _ in range(n)
                )
                sock.send_multipart(p.encode(p.Publish(batch)))
                sent += n
            if not sock.poll(30_000) or hub.poll() is not None:
                raise TimeoutError(f"no CONF for 30 s: {(data / 'hub.log').read_text()[-3000:]}")
            reply = p.decode(sock.recv_multipart())
            if isinstance(reply, p.Confirm):
                confirmed += len(reply.ids)
            elif isinstance(reply, p.Nack):
                raise RuntimeError(f"refused: {reply.refusals[0].reason}")
        elapsed = time.monotonic() - t0
        sock.close(linger=100)
        rss, hwm = _rss_mb(hub.pid)
        print(
            f"{tasks} tasks of {body_size} B queued in {elapsed:.1f} s: hub RSS {rss:.0f} MiB "
            f"(peak {hwm:.0f}), data dir {_du_mb(data):.1f} MiB"
        )
        hub.terminate()
        hub.wait(60)
        hub = _start_hub(url, data)
        t0 = time.monotonic()
        _wait_welcome(ctx, url, timeout=600)
        rss, hwm = _rss_mb(hub.pid)
        print(
            f"restarted, {tasks} tasks restored in {time.monotonic() - t0:.1f} s: hub RSS "
            f"{rss:.0f} MiB (peak {hwm:.0f}), data dir {_du_mb(data):.1f} MiB"
        )
        t0 = time.monotonic()
        _drain(ctx, url, tasks)
        drained = time.monotonic() - t0
        time.sleep(3)  # a few checkpoint intervals: the WAL is truncated once the writer idles
        rss, hwm = _rss_mb(hub.pid)
        print(
            f"drained by one worker in {drained:.1f} s: hub RSS {rss:.0f} MiB (peak {hwm:.0f}), "
            f"data dir {_du_mb(data):.1f} MiB"
        )
    finally:
        hub.terminate()
        hub.wait(60)
        ctx.destroy(linger=0)
        if os.environ.get("KEEP") is None:
            shutil.rmtree(data, ignore_errors=True)


def _drain(ctx: zmq.Context[zmq.Socket[bytes]], url: str, tasks: int) -> None:
    """A worker that acknowledges every delivery (no result stored) until ``tasks`` are done."""
    sock = ctx.socket(zmq.DEALER)
    sock.connect(url)
    hello = p.Hello(role="worker", node="bench-drain", queues=("celery",), credit=1000)
    sock.send_multipart(p.encode(hello))
    done = 0
    try:
        while done < tasks:
            if not sock.poll(30_000):
                raise TimeoutError(f"no delivery for 30 s after {done} tasks")
            message = p.decode(sock.recv_multipart())
            if isinstance(message, p.Ping):
                sock.send_multipart(p.encode(p.Pong()))
            elif isinstance(message, p.Deliver):
                acks = tuple(
                    p.ResultMessage(d.task.id, "SUCCESS", store=False, credit=1)
                    for d in message.deliveries
                )
                sock.send_multipart(p.encode(p.Done(acks)))
                done += len(acks)
        sock.send_multipart(p.encode(p.Bye()))
    finally:
        sock.close(linger=1000)


def throughput(tasks: int, body_size: int, window: int | None) -> None:
    """Publish, deliver and acknowledge ``tasks`` noop tasks through an in-process hub
    (``window``: ``hub_body_window_size``; 0 reads every body back from the store)."""
    data = Path(tempfile.mkdtemp(prefix="celeriac-hubtput-"))
    store = SQLiteStore(data / "hub.db")
    hub = HubState(store, SystemClock(), hub_id="bench")
    if window is not None:  # imported here: older hubs have no window
        from celeriac.transport.hub.limits import HubLimits  # noqa: PLC0415

        hub.apply_limits(HubLimits(body_window_size=window))
    worker, client = b"worker", b"client"
    hello = p.Hello(role="worker", node="w", queues=("celery",), declare=_DECLARE, credit=200)
    hub.handle(worker, p.encode(hello))
    hub.outbox.clear()
    body = b"x" * body_size
    done = 0
    t0 = time.perf_counter()
    while done < tasks:
        batch = tuple(
            p.TaskMessage(id=str(uuid.uuid4()), task="bench.noop", body=body, queue="celery")
            for _ in range(100)
        )
        hub.handle(client, p.encode(p.Publish(batch)))
        hub.tick()
        store.commit()
        outbox, hub.outbox[:] = list(hub.outbox), []
        acks = []
        for frames in outbox:
            if frames[0] != worker:
                continue
            message = p.decode(frames[1:])
            if isinstance(message, p.Deliver):
                acks.extend(
                    p.ResultMessage(d.task.id, "SUCCESS", store=False, credit=1)
                    for d in message.deliveries
                )
        if not acks:
            raise RuntimeError(f"nothing delivered: {hub.statistics()}")
        hub.handle(worker, p.encode(p.Done(tuple(acks))))
        done += len(acks)
        hub.tick()
        store.commit()
        hub.outbox.clear()
    elapsed = time.perf_counter() - t0
    store.close()
    shutil.rmtree(data, ignore_errors=True)
    print(f"{done} noop tasks through the hub state in {elapsed:.2f} s: {done / elapsed:.0f}/s")


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("queue", "throughput"))
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--body", type=int, default=None, help="body size in bytes")
    parser.add_argument("--window", type=int, default=None, help="hub_body_window_size")
    args = parser.parse_args()
    if args.mode == "queue":
        queue(args.tasks or 200_000, 1024 if args.body is None else args.body)
    else:
        throughput(args.tasks or 20_000, 64 if args.body is None else args.body, args.window)


if __name__ == "__main__":
    main()
