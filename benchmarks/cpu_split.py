"""Where the CPU of a task goes: producer, hub and workers, in CPU microseconds per task.

Throughput on a shared 2-core machine drifts with whatever else runs; the CPU each process
spends per task drifts much less, so this is the figure to compare before and after a change
(issue 18). Starts a standalone ``celeriac hub`` and ``--workers`` worker processes
(``-P threads -c 2``, the tasks of ``celeriac_tasks.py``), then in this process (the producer):
``--tasks`` ``noop()`` (results ignored; done when the harness counter says so), and half as
many ``add(i, i)`` with every result fetched. Prints the start-up time (from starting the
processes to the first result: a worker with an embedded hub includes the hub's start), then,
per workload, tasks/s and the CPU µs per task of each process (read from /proc)::

    python benchmarks/cpu_split.py --tasks 10000 [--workers 2] [--embedded | --hub-process |
        --hub-thread] [--latency 1000]

``--embedded``: no hub process; the first worker's embedded hub serves, where the default puts
it (its CPU is the hub column when it runs in a child process of that worker, else it is
counted with the workers'). ``--hub-process`` / ``--hub-thread``: ``--embedded`` with the hub
in a child process / a thread of the worker (``worker_embedded_hub_process`` true / false).
``--latency N``: then N sequential ``add(1, 1).get()``, p50 and p99.
After the table, for the noop run: how many tasks had run when the last publish was confirmed
(near 0: the hub took the publishes before running any, the phases did not overlap), the
machine's idle CPU and how long each process's threads were runnable without a CPU (all three
well above 0 with the machine not idle: the other load on a shared machine set the rate).
Needs the shared harness (``--bench-dir``, default ``../shared/bench``)
for its counter.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a live process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _switches(pid: int) -> int:
    """Context switches (voluntary and not) of a live process, summed over its threads."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(ln.split()[1]) for ln in lines if "ctxt_switches" in ln)
    return total


def _waited(pid: int) -> float:
    """Seconds the threads of a live process spent runnable but waiting for a CPU (schedstat):
    work held up by the machine's other load, not by the pipeline."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError):
            continue
    return total / 1e9


def _idle() -> float:
    """Seconds all CPUs of the machine were idle so far (/proc/stat: idle + iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (an embedded hub's process is one of its worker's)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.01)


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM to every process we started, then wait for each (SIGKILL after ``timeout``)."""
    for proc in procs:
        proc.terminate()  # (nothing for one already reaped)
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_env(run: Path, broker: str, bench_dir: str) -> tuple[dict[str, str], Path]:
    """The environment of the hub, the workers and the producer (no outer ``CELERIAC_*``
    setting; the benchmark's app and the harness importable) and the harness folder."""
    harness = Path(bench_dir).resolve() / "harness"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")}
    env.update(
        BENCH_BROKER=broker,
        ANCHORS_RUN=str(run),
        CELERIAC_HUB_DATA_DIR=str(run / "data"),
        PYTHONPATH=os.pathsep.join([str(HERE), str(harness)]),
    )
    return env, harness


def _listening(url: str) -> bool:
    host, _, port = url.rpartition("/")[2].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def main() -> None:
    """Start the hub and workers, run both workloads, print the CPU split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--hub-process", action="store_true")
    parser.add_argument("--hub-thread", action="store_true")
    parser.add_argument(
        "--latency",
        type=int,
        default=0,
        metavar="CALLS",
        help="then CALLS sequential add(1, 1).get(): p50 and p99 of the round trip",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="a setting for the hub and workers (as CELERIAC_<SETTING>), e.g. "
        "worker_prefetch_multiplier=16; may be repeated",
    )
    parser.add_argument("--bench-dir", default=str(HERE.parent.parent / "shared" / "bench"))
    args = parser.parse_args()
    args.embedded = args.embedded or args.hub_process or args.hub_thread
    run = Path(tempfile.mkdtemp(prefix="cpu-split-"))
    broker = f"tcp://127.0.0.1:{_free_port()}"
    env, harness = bench_env(run, broker, args.bench_dir)
    if args.hub_process or args.hub_thread:
        env["CELERIAC_WORKER_EMBEDDED_HUB_PROCESS"] = "true" if args.hub_process else "false"
    for item in args.set:
        name, _, value = item.partition("=")
        env[f"CELERIAC_{name.upper()}"] = value
    os.environ.update(env)
    sys.path[:0] = [str(HERE), str(harness)]
    celeriac = [str(Path(sys.executable).parent / "celeriac")]
    procs: dict[str, list[subprocess.Popen[bytes]]] = {"hub": [], "workers": []}
    log = open(run / "processes.log", "wb")  # noqa: SIM115 - closed at the end
    started = time.monotonic()
    try:
        if not args.embedded:
            hub = [*celeriac, "hub", "--bind", broker, "--data-dir", str(run / "data")]
            procs["hub"].append(
                subprocess.Popen([*hub, "-l", "warning"], env=env, stdout=log, stderr=log)
            )
        for i in range(args.workers):
            argv = [*celeriac, "-A", "celeriac_tasks", "worker", "-P", "threads", "-c", "2"]
            argv += ["-l", "WARNING", "-n", f"cpu{i}", "--broker", broker]
            # given --broker, "auto" never embeds: the first worker is told to be the hub
            argv += ["--embedded-hub", "always" if args.embedded and i == 0 else "never"]
            procs["workers"].append(
                subprocess.Popen(argv, env=env, cwd=run, stdout=log, stderr=log)
            )
            if args.embedded and i == 0 and args.workers > 1:
                # the first worker takes the address for its hub; the others connect to it
                _wait(lambda: _listening(broker), 60, "the embedded hub")
        import celeriac_tasks as bench  # noqa: PLC0415 - after the environment is set
        import common  # noqa: PLC0415

        bench.add.delay(1, 1).get(timeout=120)  # everything is up
        startup = time.monotonic() - started
        common.counter_reset()

        # An embedded hub in a process of its own (a child of the first worker) is the hub
        # column; one in a thread of the worker is counted with the workers.
        hub_children = _children(procs["workers"][0].pid) if args.embedded else []

        def snapshot() -> dict[str, float]:
            cpu = {k: sum(_cpu(p.pid) for p in ps) for k, ps in procs.items()}
            cpu["hub"] += sum(_cpu(pid) for pid in hub_children)
            for k, ps in procs.items():
                cpu[f"{k}_cs"] = float(sum(_switches(p.pid) for p in ps))
            cpu["hub_cs"] += sum(_switches(pid) for pid in hub_children)
            cpu["producer_cs"] = float(_switches(os.getpid()))
            for k, ps in procs.items():
                cpu[f"{k}_rq"] = sum(_waited(p.pid) for p in ps)
            cpu["hub_rq"] += sum(_waited(pid) for pid in hub_children)
            cpu["producer_rq"] = _waited(os.getpid())
            cpu["idle"] = _idle()
            cpu["producer"] = time.process_time()
            cpu["wall"] = time.monotonic()
            return cpu

        procs_order = ("producer", "hub", "workers")
        rows = []
        before = snapshot()
        for _ in range(args.tasks):
            bench.noop.delay()
        bench.app.flush()
        run_when_confirmed = common.counter_value()
        _wait(lambda: common.counter_value() >= args.tasks, 600, "noop")
        after = snapshot()
        rows.append(("noop, no results", args.tasks, before, after))
        n = args.tasks // 2
        before = snapshot()
        handles = [bench.add.delay(i, i) for i in range(n)]
        assert [h.get(timeout=600) for h in handles] == [2 * i for i in range(n)]
        after = snapshot()
        rows.append(("add, all results", n, before, after))
        where = (
            f"embedded hub ({'its own process' if hub_children else 'in the worker'})"
            if args.embedded
            else "standalone hub"
        )
        print(f"{args.workers} worker process(es) -P threads -c 2, {where}")
        print(f"start-up (processes started -> first result): {startup:.2f} s")
        print(
            f"{'workload':18s} {'tasks/s':>8s}  CPU µs/task: producer    hub  workers  total"
            "   switches/task: producer  hub  workers"
        )
        for name, count, b, a in rows:
            per = {k: (a[k] - b[k]) / count * 1e6 for k in ("producer", "hub", "workers")}
            rate = count / (a["wall"] - b["wall"])
            total = sum(per.values())
            cs = {k: (a[f"{k}_cs"] - b[f"{k}_cs"]) / count for k in ("producer", "hub", "workers")}
            print(
                f"{name:18s} {rate:8.0f}  {'':12s}{per['producer']:8.0f} {per['hub']:6.0f} "
                f"{per['workers']:8.0f} {total:6.0f}   {'':15s}{cs['producer']:8.2f} "
                f"{cs['hub']:4.2f} {cs['workers']:8.2f}"
            )
        b, a = rows[0][2], rows[0][3]
        wall = a["wall"] - b["wall"]
        waits = "/".join(f"{(a[f'{k}_rq'] - b[f'{k}_rq']) / wall:.2f}" for k in procs_order)
        print(
            f"noop: {run_when_confirmed} of {args.tasks} had run when the last publish was "
            f"confirmed; machine idle "
            f"{(a['idle'] - b['idle']) / wall:.2f} cores; runnable, waiting for a CPU (cores) "
            f"producer/hub/workers {waits}"
        )
        if args.latency:
            times = []
            for _ in range(args.latency):
                t0 = time.perf_counter()
                bench.add.delay(1, 1).get(timeout=60)
                times.append(time.perf_counter() - t0)
            times.sort()
            p50, p99 = (times[int(q * (len(times) - 1))] * 1e6 for q in (0.5, 0.99))
            print(
                f"sequential add(1, 1).get(), {args.latency} calls: "
                f"p50 {p50:.0f} µs, p99 {p99:.0f} µs"
            )
        bench.app.close()
    finally:
        stop_processes([*procs["workers"], *procs["hub"]])
        log.close()


if __name__ == "__main__":
    main()
