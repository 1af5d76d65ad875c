"""A batch's frames on a real socket: one ``TASK`` of N deliveries sent, received and decoded,
its item frames as separate frames (as before protocol ``CLR3``) or packed in one frame (as
``next_batch`` sends a merged message now): process CPU µs per delivery, both sides and
libzmq's I/O thread, the best of a few repeats, the two forms alternated in one process.

    python benchmarks/frames_micro.py [--deliveries 40] [--reps 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from celeriac import App
from celeriac._compose import compose
from celeriac.transport import protocol as p
from celeriac.transport.multipart import recv_frames, send_frames


def _deliveries(n: int) -> list[list[bytes]]:
    """``n`` one-delivery ``TASK`` messages of ``add(1, 2)``, as the hub encodes them."""
    app = App("frames-micro", broker="tcp://127.0.0.1:1")

    @app.task(name="bench.add")
    def add(a: int, b: int) -> int:
        return a + b

    out = []
    for _ in range(n):
        message = compose(app.conf, "bench.add", [1, 2], {}, {}, time.time(), task=add)
        out.append(p.encode(p.Deliver((p.Delivery(message, "celery"),))))
    return out


def _time(make: Callable[[], list[bytes]], pair: tuple[Any, Any], n: int, reps: int) -> float:
    """The best of five: process CPU µs per delivery to send, receive and decode ``make()``."""
    sender, receiver = pair
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(reps):
            send_frames(sender, make())
            message = p.decode(recv_frames(receiver))
        best = min(best, (time.process_time() - start) / reps / n * 1e6)
        assert len(message.deliveries) == n  # type: ignore[union-attr]
    return best


def main() -> None:
    """Time both forms, alternated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=40)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = _deliveries(args.deliveries)
    ctx: zmq.Context[Any] = zmq.Context()
    sender, receiver = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    port = sender.bind_to_random_port("tcp://127.0.0.1")
    receiver.connect(f"tcp://127.0.0.1:{port}")

    def separate() -> list[bytes]:
        return [p.TAG, b"TASK", *(f for m in messages for f in m[2:])]

    def packed() -> list[bytes]:
        return p.next_batch(deque(list(m) for m in messages))

    print(f"one TASK of {args.deliveries} deliveries over tcp://127.0.0.1, µs a delivery")
    print(f"{'round':>5s} {'separate frames':>16s} {'packed':>8s}")
    for i in range(args.rounds):
        a = _time(separate, (sender, receiver), args.deliveries, args.reps)
        b = _time(packed, (sender, receiver), args.deliveries, args.reps)
        print(f"{i + 1:5d} {a:16.2f} {b:8.2f}")
    sender.close(0)
    receiver.close(0)
    ctx.term()


if __name__ == "__main__":
    main()
