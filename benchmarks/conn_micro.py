"""The worker's connection thread's CPU per task, in microseconds, without threads or a hub.

What the connection thread (``runtime/connection.py``) does per task under load, timed in one
thread: a real :class:`~celeriac.transport.session.WorkerSession` (two slots, the prefetch
window of ``--window``, run-ahead 16) and the real connection code around it. A ``TASK`` of
``--batch`` deliveries (encoded as the hub encodes them, as much as the credit allows) is
decoded and handled; the slots' outcomes (encoded in advance, as a slot encodes its ``DONE``)
are queued in the node's inbox, ``--per-wake`` at a time, and taken as the doorbell would
have them taken; the merged ``DONE`` is sent on an inproc socket. The slots' own work and the
hub's are left out::

    python benchmarks/conn_micro.py --tasks 20000 [--batch 30] [--per-wake 24]
    python benchmarks/conn_micro.py --tasks 20000 --profile        # cProfile of the loop

Prints the CPU µs per task (this thread's CPU time, the best of ``--rounds``), all of it and
the decode of the ``TASK`` messages apart (the codec's share).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
from collections import Counter, deque
from typing import Any

import zmq

from celeriac import App
from celeriac._compose import compose
from celeriac.actors.outcome import TaskOutcome
from celeriac.actors.tasktype import TaskTypes
from celeriac.runtime.connection import HubConnection
from celeriac.runtime.inbox import Inbox
from celeriac.runtime.outcomes import outcome_message
from celeriac.transport import protocol as p
from celeriac.transport import session as s

app = App("conn-micro", broker="tcp://127.0.0.1:1")


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """The benchmark's noop."""


class _Pool:
    """A threads pool's face, keeping what it is handed (the slots run nothing here)."""

    size = 2
    run_ahead = 16

    def __init__(self) -> None:
        self.handed: list[deque[p.Delivery]] = [deque(), deque()]

    def submit(self, index: int, delivery: p.Delivery) -> None:
        self.handed[index].append(delivery)

    def hand(self, index: int, deliveries: list[p.Delivery], *, wake: bool = True) -> None:
        self.handed[index].extend(deliveries)

    def wake_handed(self) -> None:
        pass

    def recall(self, index: int, tag: str) -> bool:
        return False


class _View:
    def flush_events(self) -> None:
        pass


class _Node:
    """What the connection reads of its node."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.pool = _Pool()
        self.send_events = False
        self.on_task_start = None
        self.on_task_end = None
        self.processed: Counter[str] = Counter()
        self.started_at: dict[int, float] = {}
        self.types = TaskTypes({})


def _connection(window: int) -> tuple[HubConnection, zmq.Socket[Any]]:
    """A connection around a fresh session, sending on an inproc pair (the other end back)."""
    config = s.WorkerConfig(
        node="micro",
        endpoint="inproc://micro",
        queues=("celery",),
        slots=2,
        prefetch=window,
        heartbeat=1e9,
        giveback=1e9,
        run_ahead=16,
    )
    session = s.WorkerSession(config, 0.0)
    session.report_received = False  # as the loop sets it (task events off)
    conn = HubConnection.__new__(HubConnection)  # no link, no socket of its own
    conn.node = _Node()  # type: ignore[assignment]
    conn.session = session
    conn.clock = app.clock
    conn.view = _View()  # type: ignore[assignment]
    conn.stopped = False
    conn.runs = {}
    conn._perform_one = {
        s.Send: conn._do_send,
        s.SendEncoded: conn._do_send_encoded,
        **conn.effect_handlers(),
    }
    ctx = zmq.Context.instance()
    sink = ctx.socket(zmq.PULL)
    sink.bind(f"inproc://micro-{id(conn)}")
    conn.sock = ctx.socket(zmq.PUSH)
    conn.sock.connect(f"inproc://micro-{id(conn)}")
    conn.perform(session.connect(0.0))
    session.handle(p.Welcome("hub", 2.0, "micro"), 0.0)  # its Ready effect: not a node here
    return conn, sink


def _groups(n: int) -> list[list[bytes]]:
    """``n`` noop deliveries as the hub's ``TASK`` frames (3 each)."""
    task = app.tasks["bench.noop"]
    out = []
    for _ in range(n):
        message = compose(app.conf, "bench.noop", [], {}, {}, time.time(), task=task)
        out.append(p.encode(p.Deliver((p.Delivery(message, "celery"),)))[2:])
    return out


def run(groups: list[list[bytes]], window: int, batch: int, per_wake: int) -> tuple[float, float]:
    """Connection CPU µs per task over ``groups``, and the decode's share."""
    conn, sink = _connection(window)
    node: Any = conn.node
    n = len(groups)
    outcome = TaskOutcome("x", None, "SUCCESS", "application/json", b"null", store=False)
    done = p.encode(outcome_message(outcome, credit=1))
    credit, sent, finished = window, 0, 0
    spent = decoding = 0
    clock = time.thread_time_ns
    while finished < n:
        while credit and sent < n:  # the hub: a TASK as large as the credit allows
            k = min(credit, batch, n - sent)
            frames = [p.TAG, b"TASK"]
            for group in groups[sent : sent + k]:
                frames += group
            sent, credit = sent + k, credit - k
            t0 = clock()
            message = p.decode(frames)
            t1 = clock()
            conn._received(message)
            conn.perform(conn.session.received_all())
            conn.hand_over()
            spent += clock() - t0
            decoding += t1 - t0
        wake = 0  # the slots: each runs what it was handed, its outcomes queue in the inbox
        for slot, handed in enumerate(node.pool.handed):
            for _ in range(min(len(handed), per_wake // 2)):
                handed.popleft()
                node.inbox.outcome(slot, list(done))  # a slot's own frames each time
                wake += 1
        t0 = clock()
        conn._outcomes()
        conn.hand_over()
        spent += clock() - t0
        finished += wake
        credit += wake
        while sink.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            sink.recv_multipart()
    return spent / 1000 / n, decoding / 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--per-wake", type=int, default=24)
    parser.add_argument("--profile", action="store_true", help="cProfile one round")
    options = parser.parse_args()
    app.finalize()
    args = (_groups(options.tasks), options.window, options.batch, options.per_wake)
    if options.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, *args)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    best = (float("inf"), 0.0)
    for _ in range(options.rounds):
        gc.collect()
        best = min(best, run(*args))
    print(f"connection µs/task: {best[0]:.2f}  (decode of TASK: {best[1]:.2f})")


if __name__ == "__main__":
    main()
