"""Which side of producer -> hub -> worker bounds noop throughput: each thread's CPU over time.

Starts a standalone ``celeriac hub`` and ``--workers`` workers (``-P threads -c 2``, the tasks
of ``celeriac_tasks.py``) like ``cpu_split.py``, then, by mode:

- ``full``: publish ``--tasks`` noops and wait until they ran (also: how many had run when the
  last publish was confirmed: near 0, the hub took the whole burst before running any);
- ``publish``: the workers stopped first: how fast the producer publishes and the hub confirms;
- ``drain``: the noops published and confirmed first, then the workers start: how fast they run
  them (from the first one run to the last).

Prints each thread's CPU share over the run (``/proc/<pid>/task/*/stat``) and a timeline every
``--sample`` seconds: tasks run per second, each process's CPU (cores) and how long its threads
were runnable without a CPU (``rq``, schedstat), and the machine's idle cores (issue 18)::

    python benchmarks/pipe_probe.py full|publish|drain [--tasks 20000] [--set SETTING=VALUE]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cpu_split import _free_port, _idle, _listening, bench_env, stop_processes

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")

#: One sample: per process name, per thread id, (name, CPU seconds, runnable-waiting seconds).
Sample = dict[str, dict[int, tuple[str, float, float]]]


def threads(pid: int) -> dict[int, tuple[str, float, float]]:
    """Each thread of a live process: its name, CPU seconds and seconds waiting for a CPU."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            waited = int((task / "schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError):
            continue
        fields = stat.rpartition(")")[2].split()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / TICK, waited)
    return out


def _until(predicate: Callable[[], bool], timeout: float, poll: float = 0.001) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"not within {timeout:.0f}s")
        time.sleep(poll)


def report(samples: list[tuple[float, Sample, int, float]], start: float) -> None:
    """Each thread's CPU share over the whole run, then the timeline."""
    (t0, first, _, _), (t1, last, _, _) = samples[0], samples[-1]
    wall = t1 - t0
    if wall <= 0:  # the run ended before a second sample: nothing to divide by
        sys.exit("the run was shorter than one sample: more --tasks, or a smaller --sample")
    print(f"wall {wall:.2f} s; CPU share of each thread (cores):")
    for name, now in last.items():
        before = first.get(name, {})
        rows = sorted(
            ((cpu - before.get(tid, (n, 0.0, 0.0))[1], tid, n) for tid, (n, cpu, _) in now.items()),
            reverse=True,
        )
        shown = ", ".join(f"{n}:{tid}={used / wall:.2f}" for used, tid, n in rows if used > 0.005)
        print(f"  {name}: {sum(r[0] for r in rows) / wall:.2f} ({shown})")
    print("timeline: seconds, tasks run/s, per process CPU/runnable-waiting (cores), machine idle")
    for (ta, a, ca, ia), (tb, b, cb, ib) in itertools.pairwise(samples):
        d = tb - ta
        parts = []
        for name, now in b.items():
            was = a.get(name, {})
            cpu = sum(v[1] for v in now.values()) - sum(v[1] for v in was.values())
            rq = sum(v[2] for v in now.values()) - sum(v[2] for v in was.values())
            parts.append(f"{name}={cpu / d:.2f}/rq{rq / d:.2f}")
        spare = (ib - ia) / d
        print(f"  {tb - start:6.2f} {int((cb - ca) / d):6d}  {' '.join(parts)}  idle={spare:.2f}")


def main() -> None:
    """Start the hub and workers, run the mode, print the per-thread report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("full", "publish", "drain"))
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sample", type=float, default=0.25)
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE")
    parser.add_argument("--bench-dir", default=str(HERE.parent.parent / "shared" / "bench"))
    args = parser.parse_args()
    run = Path(tempfile.mkdtemp(prefix="pipe-probe-"))
    broker = f"tcp://127.0.0.1:{_free_port()}"
    env, harness = bench_env(run, broker, args.bench_dir)
    for item in args.set:
        name, _, value = item.partition("=")
        env[f"CELERIAC_{name.upper()}"] = value
    os.environ.update(env)
    sys.path[:0] = [str(HERE), str(harness)]
    celeriac = str(Path(sys.executable).parent / "celeriac")
    log = open(run / "processes.log", "wb")  # noqa: SIM115 - closed at the end
    hub = subprocess.Popen(
        [celeriac, "hub", "--bind", broker, "--data-dir", str(run / "data"), "-l", "warning"],
        env=env,
        stdout=log,
        stderr=log,
    )
    workers: list[subprocess.Popen[bytes]] = []
    procs = {"producer": os.getpid(), "hub": hub.pid}

    def start_workers() -> None:
        for i in range(args.workers):
            argv = [celeriac, "-A", "celeriac_tasks", "worker", "-P", "threads", "-c", "2"]
            argv += ["-l", "WARNING", "-n", f"probe{i}", "--broker", broker]
            worker = subprocess.Popen(
                [*argv, "--embedded-hub", "never"], env=env, cwd=run, stdout=log, stderr=log
            )
            workers.append(worker)
            procs[f"worker{i}"] = worker.pid

    def stop_workers() -> None:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(20)
        workers.clear()
        for name in [n for n in procs if n.startswith("worker")]:
            del procs[name]

    try:
        _until(lambda: _listening(broker), 60, 0.01)
        import celeriac_tasks as bench  # noqa: PLC0415 - after the environment is set
        import common  # noqa: PLC0415

        start_workers()
        bench.add.delay(1, 1).get(timeout=120)  # everything is up
        if args.mode != "full":
            stop_workers()
        common.counter_reset()
        samples: list[tuple[float, Sample, int, float]] = []
        done = threading.Event()

        def sampler() -> None:
            while not done.is_set():
                snap = {}
                for name, pid in list(procs.items()):
                    try:
                        snap[name] = threads(pid)
                    except OSError:
                        continue
                samples.append((time.monotonic(), snap, common.counter_value(), _idle()))
                done.wait(args.sample)

        watcher = threading.Thread(target=sampler, daemon=True)
        watcher.start()
        start = time.monotonic()
        for _ in range(args.tasks):
            bench.noop.delay()
        published = time.monotonic()
        bench.app.flush()
        confirmed = time.monotonic()
        run_at_confirm = common.counter_value()
        n = args.tasks
        print(
            f"published {n / (published - start):.0f}/s, confirmed {n / (confirmed - start):.0f}/s"
        )
        if args.mode == "drain":
            start_workers()
            _until(lambda: common.counter_value() >= 1, 120, 0.0005)
            first, ran = time.monotonic(), common.counter_value()
            _until(lambda: common.counter_value() >= n, 600)
            print(f"drain: {(n - ran) / (time.monotonic() - first):.0f} tasks/s")
        elif args.mode == "full":
            _until(lambda: common.counter_value() >= n, 600)
            rate = n / (time.monotonic() - start)
            print(f"full: {rate:.0f} tasks/s; {run_at_confirm} had run at the last confirm")
        done.set()
        watcher.join()
        report(samples, start)
        bench.app.close()
    finally:
        stop_processes([*workers, hub])
        log.close()


if __name__ == "__main__":
    main()
