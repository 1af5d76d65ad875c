"""The hub's CPU per task in its real loop turns, one task at a time (issue 18).

Where :mod:`hub_micro` prices the state without sockets, this drives a real
:class:`~celeriac.transport.hubserver.HubServer` (SQLite in a temporary directory, its ROUTER on
inproc, its events XPUB with no subscriber) from this thread: a client publishes one task, the
hub turns until the worker has its ``TASK``, the worker answers ``DONE``, the hub turns until
the client has its ``CONF`` and ``RES``. Each turn is the server's own (wait, receive, handle,
tick, commit or not, send), timed in thread CPU; so a turn's fixed costs, a message's costs and
the commit of a one-task publish are all in the figure, as in a real run where a turn carries
one or two tasks. Prints turns and hub CPU µs per task, best of ``--runs`` (a loaded machine
only ever adds)::

    python benchmarks/hub_loop.py --tasks 3000 --runs 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import zmq

from celeriac import App
from celeriac._compose import compose
from celeriac.routing import declarations
from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer
from celeriac.transport.multipart import recv_frames, send_frames


class _Loop:
    """A hub server whose turns this thread runs and times."""

    def __init__(self, hub: HubServer) -> None:
        self.hub = hub
        self.cpu_ns = 0
        self.turns = 0

    def until(self, sock: zmq.Socket[Any]) -> None:
        """Run turns until ``sock`` has something to read."""
        hub = self.hub
        while not sock.poll(0):
            start = time.thread_time_ns()
            hub._wait_and_turn()
            self.cpu_ns += time.thread_time_ns() - start
            self.turns += 1


def run(tasks: int, results: bool) -> tuple[float, float]:
    """Turns per task and hub CPU µs per task."""
    conf = App("hub_loop", broker="tcp://127.0.0.1:1").conf
    ctx: zmq.Context[Any] = zmq.Context()
    with tempfile.TemporaryDirectory() as tmp:
        hub = HubServer("inproc://hub-loop", tmp, context=ctx, events="tcp://127.0.0.1:*")
        loop = _Loop(hub)
        client, worker = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
        client.connect(hub.endpoint)
        worker.connect(hub.endpoint)
        declare = p.declaration(*declarations(conf))
        send_frames(client, p.encode(p.Hello("client", "c", declare=declare)))
        loop.until(client)
        recv_frames(client)  # WELCOME
        hello = p.Hello("worker", "w", pid=1, queues=("celery",), declare=declare, credit=2)
        send_frames(worker, p.encode(hello))
        loop.until(worker)
        while worker.poll(0):
            recv_frames(worker)
        loop.cpu_ns = loop.turns = 0
        now = time.time()
        for _ in range(tasks):
            task = compose(conf, "bench.add", (1, 2), None, {"ignore_result": not results}, now)
            send_frames(client, p.encode(p.Publish((task,))))
            got: p.Message | None = None
            while not isinstance(got, p.Deliver):
                loop.until(worker)
                got = p.decode(recv_frames(worker))
                if isinstance(got, p.Ping):
                    send_frames(worker, p.encode(p.Pong()))
            d = got.deliveries[0]
            done = p.ResultMessage(
                d.task.id, "SUCCESS", body=b"3", tag=d.tag, store=results, credit=1
            )
            send_frames(worker, p.encode(p.Done((done,))))
            answers = 2 if results else 1  # CONF, and RES
            while answers:
                loop.until(client)
                recv_frames(client)
                answers -= 1
        client.close(0)
        worker.close(0)
        hub._close()
    ctx.term()
    return loop.turns / tasks, loop.cpu_ns / tasks / 1000


def main() -> None:
    """Parse the options, run ``--runs`` times, print the best."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-results", action="store_true", help="ignore_result tasks")
    args = parser.parse_args()
    runs = [run(args.tasks, not args.no_results) for _ in range(args.runs)]
    turns, cpu = min(runs, key=lambda r: r[1])
    print(f"{turns:.2f} turns/task, hub CPU {cpu:.1f} us/task (best of {args.runs})")


if __name__ == "__main__":
    main()
