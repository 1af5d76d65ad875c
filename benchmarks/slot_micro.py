"""A task's own CPU inside an execution slot, in microseconds, without sockets or threads.

What a threads worker's slot thread does per delivery, timed in a loop: a real
:class:`~celeriac.actors.execution.TaskExecutor` (made as the worker makes it, from a real App)
runs the delivery, :func:`~celeriac.runtime.outcomes.outcome_frames` turns the outcome into the
encoded ``DONE`` (what the slot's inbox then sends). The deliveries are built as the
connection builds them: a message composed as ``apply_async`` composes it, encoded as the hub's
``TASK`` and decoded again (that decode is the connection thread's, timed apart). Two tasks,
the benchmark's: ``noop`` (``ignore_result``) and ``add`` (result stored). Logging is set up
at WARNING, as the benchmark's worker runs::

    python benchmarks/slot_micro.py --tasks 20000
    python benchmarks/slot_micro.py --tasks 20000 --profile add    # cProfile of one task's loop

Prints the CPU µs per task of each (this thread's CPU time, the best of ``--rounds``): what a
slot thread spends, in the executor and in the encoding of its outcome.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
from collections.abc import Callable
from typing import Any

from celeriac import App
from celeriac._compose import compose
from celeriac._serialization import normalize_accept
from celeriac.actors.execution import TaskExecutor
from celeriac.runtime.logging import setup_logging
from celeriac.runtime.outcomes import outcome_frames
from celeriac.transport import protocol as p

app = App("slot-micro", broker="tcp://127.0.0.1:1")


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """The benchmark's noop (without the harness's counter file)."""


@app.task(name="bench.add")
def add(a: int, b: int) -> int:
    """The benchmark's add."""
    return a + b


def _executor() -> TaskExecutor:
    """A slot's executor, made as runtime/worker.py makes it."""
    conf = app.conf
    executor = TaskExecutor(
        app,
        hostname="celeriac@bench",
        accept=normalize_accept(conf.accept_content),
        result_serializer=conf.result_serializer,
        ignore_result_default=bool(conf.task_ignore_result),
    )
    executor.state_sink = lambda message: None
    return executor


def _deliveries(name: str, args: list[Any], n: int) -> tuple[list[p.Delivery], float]:
    """``n`` deliveries of ``name(*args)`` as the connection decodes them, and the µs per
    delivery of that decode."""
    task = app.tasks[name]
    frames = []
    for _ in range(n):
        message = compose(app.conf, name, args, {}, {}, time.time(), task=task)
        frames.append(p.encode(p.Deliver((p.Delivery(message, message.queue or "celery"),))))
    start = time.thread_time_ns()
    decoded = [p.decode(f) for f in frames]
    decode_us = (time.thread_time_ns() - start) / 1000 / n
    deliveries = [d for m in decoded for d in m.deliveries]  # type: ignore[attr-defined]
    return deliveries, decode_us


def _slot_loop(executor: TaskExecutor, max_size: int | None) -> Callable[[list[p.Delivery]], None]:
    def run(deliveries: list[p.Delivery]) -> None:
        for delivery in deliveries:
            outcome = executor.execute(delivery)
            outcome_frames(outcome, credit=1, max_size=max_size)

    return run


def measure(name: str, args: list[Any], n: int, rounds: int) -> tuple[float, float, str]:
    """The best µs per task of ``rounds`` loops of ``n``; the decode's µs; the last state."""
    executor = _executor()
    run = _slot_loop(executor, app.conf.broker_max_message_size)
    best, decode_us = float("inf"), 0.0
    run(_deliveries(name, args, 100)[0])  # warm up: look-ups, class instances
    for _ in range(rounds):
        deliveries, decode_us = _deliveries(name, args, n)
        gc.collect()
        start = time.thread_time_ns()  # CPU time: steady while other processes share the cores
        run(deliveries)
        best = min(best, (time.thread_time_ns() - start) / 1000 / n)
    state = executor.execute(_deliveries(name, args, 1)[0][0]).state
    return best, decode_us, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", choices=("noop", "add"), help="cProfile that task's loop")
    options = parser.parse_args()
    setup_logging("WARNING")
    app.finalize()
    cases = {"noop": ("bench.noop", []), "add": ("bench.add", [2, 3])}
    if options.profile:
        name, args = cases[options.profile]
        executor = _executor()
        run = _slot_loop(executor, app.conf.broker_max_message_size)
        deliveries = _deliveries(name, args, options.tasks)[0]
        profiler = cProfile.Profile()
        profiler.runcall(run, deliveries)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    print(f"{'task':<6} {'slot µs/task':>13} {'(decode µs)':>12}  state")
    for label, (name, args) in cases.items():
        slot_us, decode_us, state = measure(name, args, options.tasks, options.rounds)
        print(f"{label:<6} {slot_us:>13.1f} {decode_us:>12.1f}  {state}")


if __name__ == "__main__":
    main()
