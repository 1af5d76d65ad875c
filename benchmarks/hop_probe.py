"""What a bare ZeroMQ hop costs in celeriac's topology, without celeriac (issue 18).

Three processes on loopback TCP, celeriac's sockets and options (``transport/sockets.py``,
``runtime/link.dealer``): this process's DEALER (the client) -> a ROUTER (the hub) -> a DEALER
(the worker) -> the hub -> the client, ``--calls`` sequential round trips of a 4-frame
message. Each process appends ``CLOCK_MONOTONIC`` (shared by all processes on one machine) to
the message when its send returns and when its receive returns, so the median of each hop is
measured like ``latency_trace.py --trace`` measures celeriac's (send returns -> receive
returns)::

    python benchmarks/hop_probe.py [--calls 3000] [--wait recv|zpoll|fdpoll|spin]
        [--after-send US] [--before-send US] [--spin-us US] [--ipc] [--io-threads N]

``--wait``: how every process waits for its next message: a blocking ``recv``; ``zmq.Poller``
on the socket; ``select.poll`` on the socket's ``ZMQ_FD`` with a ``ZMQ_EVENTS`` check (the
celeriac client and worker); ``spin``: non-blocking receives in a loop (a busy-poll, the
floor). ``--after-send US`` keeps the hub and worker busy in Python for that long after each
send (a turn that goes on after its send: the hub's commit, the worker's turn);
``--before-send US`` is work between a receive and the send it answers. ``--spin-us`` makes
the client busy-poll that long before it sleeps in ``poll`` (the short busy-poll idea).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import socket
import statistics
import time
from typing import Any

import msgpack
import zmq

_now = time.monotonic_ns
TAG = b"CLR3"


def _options(sock: zmq.Socket[Any], router: bool) -> None:
    """celeriac's options for its sockets (hub ROUTER, peers' DEALERs)."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 200_000)
    sock.setsockopt(zmq.RCVHWM, 200_000)
    sock.setsockopt(zmq.MAXMSGSIZE, 101 * 1024 * 1024)
    if router:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    else:
        sock.setsockopt(zmq.IPV6, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, 50)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)


def _spin(us: float) -> None:
    """Stay busy in Python for ``us`` microseconds (holding the GIL, as a turn does)."""
    if us > 0:
        end = _now() + int(us * 1000)
        while _now() < end:
            pass


class Waiter:
    """Receive one message, waiting the way ``mode`` says."""

    def __init__(self, sock: zmq.Socket[Any], mode: str, spin_us: float = 0.0) -> None:
        self.sock, self.mode, self.spin_ns = sock, mode, int(spin_us * 1000)
        self.poller = zmq.Poller()
        self.poller.register(sock, zmq.POLLIN)
        self.fdpoll = select.poll()
        self.fdpoll.register(sock.getsockopt(zmq.FD), select.POLLIN)

    def recv(self) -> list[bytes]:
        """One message, every frame."""
        sock, mode = self.sock, self.mode
        if mode == "recv" and not self.spin_ns:
            return sock.recv_multipart()
        if self.spin_ns or mode == "spin":
            end = _now() + self.spin_ns
            while mode == "spin" or _now() < end:
                try:
                    return sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    pass
        if mode == "zpoll":
            self.poller.poll(1000)
            return sock.recv_multipart()
        while not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # fdpoll: edge-triggered FD
            self.fdpoll.poll(1000)
        return sock.recv_multipart(zmq.NOBLOCK)


def _stamp(frames: list[bytes], extra: list[int]) -> list[bytes]:
    return [*frames[:-1], msgpack.packb([*msgpack.unpackb(frames[-1]), *extra])]


def hub(url: str, args: argparse.Namespace, ready: Any) -> None:
    """The ROUTER: client's messages to the worker, the worker's back to their client."""
    ctx = zmq.Context(args.io_threads)
    sock = ctx.socket(zmq.ROUTER)
    _options(sock, True)
    sock.bind(url)
    ready.set()
    waiter = Waiter(sock, args.wait)
    while True:
        frames = waiter.recv()
        got = _now()
        ident, rest = frames[0], frames[1:]
        if rest[1] == b"HI":  # the worker is connected: say so back
            sock.send_multipart(frames)
            continue
        if rest[1] == b"STOP":
            sock.send_multipart([b"W", *rest])
            break
        _spin(args.before_send)
        to = rest[2] if ident == b"W" else b"W"  # the worker's answer: to the client it names
        rest = _stamp(rest, [got])
        sock.send_multipart([to, *_stamp(rest, [_now()])])
        _spin(args.after_send)
    ctx.destroy(0)


def worker(url: str, args: argparse.Namespace, ready: Any) -> None:
    """The DEALER worker: answers every message."""
    ctx = zmq.Context(args.io_threads)
    sock = ctx.socket(zmq.DEALER)
    _options(sock, False)
    sock.setsockopt(zmq.IDENTITY, b"W")
    sock.connect(url)
    sock.send_multipart([TAG, b"HI"])
    sock.recv_multipart()
    ready.set()
    waiter = Waiter(sock, args.wait)
    while True:
        frames = waiter.recv()
        got = _now()
        if frames[1] == b"STOP":
            break
        _spin(args.before_send)
        rest = _stamp(frames, [got])
        sock.send_multipart(_stamp(rest, [_now()]))
        _spin(args.after_send)
    ctx.destroy(0)


HOPS = ("client -> hub", "hub -> worker", "worker -> hub", "hub -> client")


def main() -> None:
    """Run the probe, print the round trip's and each hop's percentiles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--wait", choices=("recv", "zpoll", "fdpoll", "spin"), default="fdpoll")
    parser.add_argument("--after-send", type=float, default=0.0)
    parser.add_argument("--before-send", type=float, default=0.0)
    parser.add_argument("--spin-us", type=float, default=0.0)
    parser.add_argument("--ipc", action="store_true")
    parser.add_argument("--io-threads", type=int, default=1)
    args = parser.parse_args()
    if args.ipc:
        url = f"ipc:///tmp/hop-probe-{os.getpid()}"
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    mpc = mp.get_context("spawn")
    ready = mpc.Event()
    procs = [mpc.Process(target=hub, args=(url, args, ready))]
    procs[0].start()
    ready.wait(30)
    ready.clear()
    procs.append(mpc.Process(target=worker, args=(url, args, ready)))
    procs[1].start()
    ready.wait(30)
    ctx = zmq.Context(args.io_threads)
    sock = ctx.socket(zmq.DEALER)
    _options(sock, False)
    sock.setsockopt(zmq.IDENTITY, b"C")
    sock.connect(url)
    waiter = Waiter(sock, args.wait, args.spin_us)
    header = msgpack.packb({"id": "x" * 36, "task": "latency.add"})
    rtts, hops = [], [[] for _ in HOPS]
    cpu0 = time.process_time()
    for i in range(args.calls + 200):  # the first 200: warm-up
        t0 = _now()
        sock.send_multipart([TAG, b"PUB", b"C", header, msgpack.packb([_now()])])
        frames = waiter.recv()
        t1 = _now()
        if i < 200:
            cpu0 = time.process_time()
            continue
        stamps = [*msgpack.unpackb(frames[-1]), t1]
        rtts.append(t1 - t0)
        for h in range(4):
            hops[h].append(stamps[2 * h + 1] - stamps[2 * h])
    cpu = (time.process_time() - cpu0) / args.calls * 1e6
    sock.send_multipart([TAG, b"STOP", b"C", header, msgpack.packb([])])
    for p in procs:
        p.join(10)
    ctx.destroy(0)
    q = statistics.quantiles(rtts, n=100)
    print(
        f"{args.calls} round trips, wait={args.wait} after_send={args.after_send} "
        f"before_send={args.before_send} spin_us={args.spin_us} ipc={args.ipc} "
        f"io_threads={args.io_threads}: p50 {q[49] / 1000:.0f} µs p90 {q[89] / 1000:.0f} "
        f"p99 {q[98] / 1000:.0f}; client CPU {cpu:.0f} µs/call"
    )
    print(
        "  hops p50 (µs): "
        + ", ".join(
            f"{name} {statistics.median(h) / 1000:.0f}" for name, h in zip(HOPS, hops, strict=True)
        )
    )


if __name__ == "__main__":
    main()
