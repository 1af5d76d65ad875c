"""The producer's CPU per publish, in microseconds, without sockets or threads (issue 18).

Times, in a loop, the steps of a ``delay()`` as the client makes them: the message composed
(:func:`~celeriac._compose.compose`, as ``send_task`` calls it), the client session's publish
and the ``PUB`` encoded (what the publishing thread queues), the queued frames merged
(``next_batch``, the I/O thread's send), the hub's ``CONF`` decoded and handled; then the
whole ``delay()`` of ``noop`` and ``add`` through a real :class:`~celeriac.runtime.client.Client`
whose socket and I/O thread are replaced by a queue (what ``cpu_split.py``'s producer does,
less the sockets and the wake-ups)::

    python benchmarks/client_micro.py [--tasks 20000] [--rounds 5]
    python benchmarks/client_micro.py --profile delay    # cProfile of the delay() loop

Prints the µs per task of each step, the best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from celeriac import App
from celeriac._compose import compose
from celeriac._serialization import normalize_accept
from celeriac.result import AsyncResult
from celeriac.runtime.client import Client
from celeriac.transport import protocol as p
from celeriac.transport import session as s

app = App("client-micro", broker="tcp://127.0.0.1:1")


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """The benchmark's noop."""


@app.task(name="bench.add")
def add(a: int, b: int) -> int:
    """The benchmark's add."""
    return a + b


class _QueueClient(Client):
    """A :class:`Client` whose I/O thread never runs: frames stay in its queue (cleared by
    the loop), the hub's ``CONF`` is handed to its session directly."""

    def __init__(self) -> None:
        self.conf = app.conf.freeze()
        self.clock = app.clock
        self._outq = deque()
        self._lock = threading.Lock()
        self._confirmed = threading.Condition(self._lock)
        self._io = threading.Lock()
        self._io.acquire()  # the socket is "busy": every publish queues, as in a burst
        self._ready = True
        self._wake_pending = True  # the I/O thread is "awake": no pipe write
        self._thread = threading.Thread(target=lambda: None)
        self._session = s.ClientSession(
            endpoint="tcp://127.0.0.1:1",
            declare=p.Declare((), ()),
            heartbeat=5.0,
            connect_timeout=5.0,
            now=time.monotonic(),
            max_unconfirmed=10**9,
            max_unconfirmed_bytes=10**12,
        )
        self.declared_queues = {"celery"}
        self._slots = {}
        self._arrived = OrderedDict()
        self._accept = normalize_accept(self.conf.accept_content)
        self._init_leader()

    def _wake(self) -> None:
        self._wake_pending = True


def _best(fn: Callable[[int], None], n: int, rounds: int) -> float:
    """The best of ``rounds`` timings of ``fn(n)``, in µs per task (this thread's CPU)."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        t0 = time.thread_time()
        fn(n)
        best = min(best, (time.thread_time() - t0) / n * 1e6)
    return best


def main() -> None:
    """Time each step and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", choices=["delay", "add", "get"], default=None)
    args = parser.parse_args()
    conf = app.conf
    client = _QueueClient()
    app._client_obj = client
    app._client_fork = 0
    session = client._session
    noop_task = app.tasks["bench.noop"]

    def compose_noop(n: int) -> None:
        for _ in range(n):
            compose(conf, "bench.noop", (), {}, {}, 0.0, task=noop_task)

    messages = [compose(conf, "bench.noop", (), {}, {}, 0.0, task=noop_task) for _ in range(64)]

    def publish_encode(n: int) -> None:
        outq = client._outq
        for i in range(n):
            for effect in session.publish(messages[i & 63]):
                assert isinstance(effect, s.Send)
                outq.append(p.encode(effect.message))
            if len(outq) > 255:
                outq.clear()
        outq.clear()
        session.unconfirmed.clear()

    batch = [p.encode(p.Publish((m,))) for m in messages[:20]]

    def merge(n: int) -> None:
        for _ in range(n // 20):
            p.next_batch(deque(list(f) for f in batch))

    conf_frames = p.encode(p.Confirm(tuple(m.id for m in messages[:20])))

    def confirm(n: int) -> None:
        for _ in range(n // 20):
            for m in messages[:20]:
                session.unconfirmed[m.id] = m
            session.handle(p.decode(conf_frames), 0.0)

    def delay_noop(n: int) -> None:
        outq = client._outq
        delay = noop.delay
        for _ in range(n):
            delay()
            if len(outq) > 255:
                outq.clear()
                session.unconfirmed.clear()
        outq.clear()
        session.unconfirmed.clear()

    def delay_add(n: int) -> None:
        outq = client._outq
        delay = add.delay
        for i in range(n):
            delay(i, i)
            if len(outq) > 255:
                outq.clear()
                session.unconfirmed.clear()
                session.expecting.clear()
        outq.clear()
        session.unconfirmed.clear()
        session.expecting.clear()

    add_task = app.tasks["bench.add"]
    adds = [compose(conf, "bench.add", (i, i), {}, {}, 0.0, task=add_task) for i in range(256)]
    res_frames = [
        p.encode(p.Result((p.ResultMessage(m.id, "SUCCESS", body=str(2 * i).encode()),)))
        for i, m in enumerate(adds)
    ]

    def result_get(n: int) -> None:
        # A result pushed before its get() (the benchmark's add: all sent, then all fetched):
        # the I/O thread's decode and handling of the RES, then the caller's get().
        for i in range(n):
            j = i & 255
            session.expecting[adds[j].id] = None
            client._perform(session.handle(p.decode(res_frames[j]), 0.0))
            client._slots.pop(adds[j].id, None)
            assert AsyncResult(adds[j].id, app).get() == 2 * j

    steps: dict[str, Callable[[int], None]] = {
        "compose (noop)": compose_noop,
        "session.publish + encode": publish_encode,
        "next_batch (20 merged)": merge,
        "CONF of 20: decode + handle": confirm,
        "noop.delay()": delay_noop,
        "add.delay(i, i)": delay_add,
        "RES handled + get() (add)": result_get,
    }
    if args.profile:
        fn = {"delay": delay_noop, "add": delay_add, "get": result_get}[args.profile]
        profiler = cProfile.Profile()
        profiler.runcall(fn, args.tasks)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    for name, fn in steps.items():
        fn(min(args.tasks, 2000))  # warm up
        print(f"{name:32s} {_best(fn, args.tasks, args.rounds):7.2f} µs/task")


if __name__ == "__main__":
    main()
