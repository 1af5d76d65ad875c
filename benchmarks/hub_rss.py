"""A hub's RSS at start, with a backlog queued, and after the backlog is drained.

    python benchmarks/hub_rss.py --tasks 200000 --body 256

Starts a real ``celeriac hub`` (subprocess, temporary data dir), reads its VmRSS from
``/proc/<pid>/status`` once it answers, publishes ``--tasks`` tasks (nobody consumes them),
reads it again, drains the queue with one worker that acknowledges each delivery, waits
``--settle`` seconds (the hub gives memory back once idle: see ``transport/hub/memory.py``)
and reads it a last time. Figures measured with it are in README's "Security and limits".
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).parent))
from hub_memory import _drain, _du_mb, _free_port_pair, _rss_mb, _start_hub, _wait_welcome

from celeriac.transport import protocol as p


def _publish(ctx: zmq.Context[zmq.Socket[bytes]], url: str, tasks: int, body_size: int) -> None:
    """``tasks`` tasks, 500 a batch, at most two batches unconfirmed."""
    sock = ctx.socket(zmq.DEALER)
    sock.connect(url)
    sock.send_multipart(p.encode(p.Declare(queues=(p.QueueDecl("celery"),))))
    body = b"x" * body_size
    sent = confirmed = 0
    try:
        while confirmed < tasks:
            while sent < tasks and sent - confirmed < 1000:
                n = min(500, tasks - sent)
                batch = tuple(
                    p.TaskMessage(
                        id=os.urandom(16).hex(), task="bench.noop", body=body, queue="celery"
                    )
                    for _ in range(n)
                )
                sock.send_multipart(p.encode(p.Publish(batch)))
                sent += n
            if not sock.poll(30_000):
                raise TimeoutError(f"no CONF for 30 s after {confirmed} confirmed")
            reply = p.decode(sock.recv_multipart())
            if isinstance(reply, p.Confirm):
                confirmed += len(reply.ids)
            elif isinstance(reply, p.Nack):
                raise RuntimeError(f"refused: {reply.refusals[0].reason}")
    finally:
        sock.close(linger=100)


def measure(tasks: int, body_size: int, settle: float) -> tuple[float, float, float]:
    """(start, full, drained) RSS of a fresh hub, in MiB; also printed."""
    data = Path(tempfile.mkdtemp(prefix="celeriac-hubrss-"))
    url = f"tcp://127.0.0.1:{_free_port_pair()}"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    hub = _start_hub(url, data)
    try:
        _wait_welcome(ctx, url)
        start, _ = _rss_mb(hub.pid)
        print(f"hub started: RSS {start:.0f} MiB")
        t0 = time.monotonic()
        _publish(ctx, url, tasks, body_size)
        full, _ = _rss_mb(hub.pid)
        print(
            f"{tasks} tasks of {body_size} B queued in {time.monotonic() - t0:.1f} s: "
            f"RSS {full:.0f} MiB, data dir {_du_mb(data):.1f} MiB"
        )
        t0 = time.monotonic()
        _drain(ctx, url, tasks)
        print(f"drained by one worker in {time.monotonic() - t0:.1f} s")
        time.sleep(settle)  # a measurement, not a synchronisation: the hub idles meanwhile
        drained, hwm = _rss_mb(hub.pid)
        print(
            f"{settle:.0f} s after the drain: RSS {drained:.0f} MiB (peak {hwm:.0f}), "
            f"data dir {_du_mb(data):.1f} MiB; {drained / start:.1f}x the start"
        )
        return start, full, drained
    finally:
        hub.terminate()
        hub.wait(60)
        ctx.destroy(linger=0)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--body", type=int, default=256, help="body size in bytes")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the drain")
    args = parser.parse_args()
    measure(args.tasks, args.body, args.settle)


if __name__ == "__main__":
    main()
