"""Where one sequential round trip (``add.delay(1, 1).get()``) spends its time (issue 18).

Starts a standalone ``celeriac hub`` and one worker (``-P threads -c 2``) as subprocesses on
loopback, then runs ``--calls`` sequential ``add(1, 1).get()`` in this process and prints p50,
p90 and p99, the CPU µs per call of each process and its thread wake-ups per call (voluntary
context switches of all its threads, from /proc: each hand-off between threads or processes is
one; steadier than the latency on a shared machine). With ``--trace`` every process also
records a ``CLOCK_MONOTONIC`` timestamp (shared by all processes on one machine) at each hop,
and the median time of each hop is printed; ``--profile FILE`` writes a cProfile of the calling
loop::

    python benchmarks/latency_trace.py --calls 2000 [--trace] [--threads] [--switch-interval 0.0005]

``TRACE_FINE=1`` (with ``--trace``) adds the worker's inner hops: the connection's turn after
the ``TASK``, the hand-off to the slot, the slot's ``on_receive`` and ``execute``, its outcome
made and its direct send tried. ``--ipc`` runs hub and worker on ``ipc://`` (a local hub only:
measured 2026-12-06, no clear gain over loopback TCP on this VM, each hop still wakes the
ZeroMQ I/O threads).

The hops: ``delay()`` and client ``publish()`` called, PUB sent (by the caller when nothing is
in flight, else by the client's I/O thread), PUB received by the hub, the hub's commit done,
TASK and CONF sent, TASK received by the worker's connection thread, the task body's start and
end in its slot, the outcome pushed by the slot, received by the
connection thread, DONE sent, DONE received by the hub, RES sent, RES and CONF received by the
client's I/O thread, the waiter resolved (its event is set when the I/O thread's turn ends),
``get()`` returned. ``--threads`` prints the wake-ups per call of each thread (Python threads
named after their ``threading`` name), which says which hand-off sleeps.

How the trace is taken: nothing in celeriac knows about it. Each process is started through
this file (``--serve``), which wraps the module-level ``send_frames``/``recv_frames`` names of
the hub loop, the worker's connection and inbox and the client, and the hub's commit, with a
recorder appending ``(event, time.monotonic_ns())`` to a list that is written out at exit.
Without ``--trace`` nothing is wrapped, so the plain p50/p99 are the code's own. The trace
costs about a microsecond per hop, so its own round trip is a little slower.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import cProfile
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from celeriac import App
from cpu_split import stop_processes

HERE = Path(__file__).resolve().parent
BROKER = os.environ.get("LATENCY_BROKER", "tcp://127.0.0.1:5598")
#: Where a traced process writes its events at exit (``<prefix>.<role>.json``); unset: no trace.
TRACE_ENV = "LATENCY_TRACE"
#: ``sys.setswitchinterval`` for every process when set (seconds).
SWITCH_ENV = "LATENCY_SWITCH_INTERVAL"

app = App("latency", broker=BROKER)
_events: list[tuple[str, int]] = []
_now = time.monotonic_ns
_COMMANDS = frozenset({b"PUB", b"CONF", b"TASK", b"DONE", b"RES", b"START", b"CRED", b"WAIT"})


@app.task(name="latency.add")
def add(a: int, b: int) -> int:
    """The measured task; its body marks the slot's start and end when tracing."""
    if _tracing:
        _events.append(("worker.body.start", _now()))
        _events.append(("worker.body.end", _now()))
    return a + b


_tracing = False


def _command(frames: Sequence[bytes]) -> str | None:
    """The protocol command among a message's first frames (identity, tag, command...)."""
    for frame in frames[:3]:
        if frame in _COMMANDS:
            return bytes(frame).decode()
    return None


def _wrap_io(module: Any, role: str, pull_type: int | None = None) -> None:
    """Record every message ``module`` sends or receives, by command."""
    send, recv = getattr(module, "send_frames", None), getattr(module, "recv_frames", None)

    def send_frames(sock: Any, frames: Sequence[bytes], flags: int = 0) -> None:
        cmd = _command(frames)
        if cmd is not None:
            _events.append((f"{role}.send.{cmd}", _now()))
        send(sock, frames, flags)  # type: ignore[misc]

    def recv_frames(sock: Any, flags: int = 0) -> list[bytes]:
        frames: list[bytes] = recv(sock, flags)  # type: ignore[misc]
        cmd = _command(frames)
        if cmd is not None:
            where = "pull" if pull_type is not None and sock.socket_type == pull_type else "recv"
            _events.append((f"{role}.{where}.{cmd}", _now()))
        return frames

    if send is not None:
        module.send_frames = send_frames
    if recv is not None:
        module.recv_frames = recv_frames


def _wrap_call(owner: Any, name: str, event: str, *, after: bool = True) -> None:
    """Record ``event`` when ``owner.name`` is called (``after``: when it returns)."""
    inner = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not after:
            _events.append((event, _now()))
        try:
            return inner(*args, **kwargs)
        finally:
            if after:
                _events.append((event, _now()))

    setattr(owner, name, wrapped)


def _install(role: str, dump: str) -> None:
    """Wrap the hops of ``role`` (hub, worker or client); write the events to ``dump`` at exit."""
    global _tracing
    import zmq  # noqa: PLC0415

    _tracing = True
    if role == "hub":
        from celeriac.transport import hubserver  # noqa: PLC0415

        _wrap_io(hubserver, "hub")
        _wrap_call(hubserver.HubServer, "_commit", "hub.commit.done")
        _wrap_call(hubserver.HubServer, "_commit", "hub.commit.start", after=False)
    elif role == "worker":
        from celeriac.runtime import connection, inbox  # noqa: PLC0415

        _wrap_io(connection, "worker", pull_type=zmq.PULL)
        _wrap_io(inbox, "slot")
        if os.environ.get("TRACE_FINE"):
            from celeriac.actors import execution, pool, task_actor  # noqa: PLC0415

            _wrap_call(pool.ThreadPool, "hand", "worker.hand", after=False)
            _wrap_call(connection.HubConnection, "_incoming", "worker.incoming.done")
            _wrap_call(task_actor.TaskSlot, "on_receive", "slot.receive", after=False)
            _wrap_call(execution.TaskExecutor, "execute", "slot.execute", after=False)
            _wrap_call(inbox.Inbox, "outcome", "slot.outcome", after=False)
            _wrap_call(connection.HubConnection, "_direct", "slot.direct", after=False)
    else:
        from celeriac.runtime import client, client_publish, client_waits  # noqa: PLC0415

        _wrap_io(client, "client")
        _wrap_io(client_publish, "client")  # the caller's own sends
        _wrap_call(client.Client, "publish", "client.publish.called", after=False)
        _wrap_call(client_waits.ClientWaits, "_resolve", "client.waiter.woken")

    def write() -> None:
        Path(dump).write_text(json.dumps(_events))

    atexit.register(write)


def _serve(argv: list[str]) -> None:
    """Run the ``celeriac`` command line with ``argv``, traced when :data:`TRACE_ENV` is set."""
    if os.environ.get(SWITCH_ENV):
        sys.setswitchinterval(float(os.environ[SWITCH_ENV]))
    _name_threads()
    prefix = os.environ.get(TRACE_ENV)
    role = "hub" if argv[:1] == ["hub"] else "worker"
    if prefix:
        _install(role, f"{prefix}.{role}.json")
    # SIGTERM as a normal exit, so the trace is written (the CLI stops its loops on SIGINT).
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    from celeriac.runtime.cli import cli  # noqa: PLC0415

    with contextlib.suppress(SystemExit):
        cli.main(args=argv, prog_name="celeriac")


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a live process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _switches(pid: int) -> int:
    """Context switches (voluntary: a thread slept) of all the threads of a live process."""
    return sum(n for _, n in _thread_switches(pid).values())


def _thread_switches(pid: int) -> dict[str, tuple[str, int]]:
    """Each live thread of ``pid`` (by tid): its name and its voluntary context switches."""
    threads: dict[str, tuple[str, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name = (task / "comm").read_text().strip()
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    threads[task.name] = (name, int(line.split()[1]))
    return threads


def _name_threads() -> None:
    """Give every thread started from now on its Python name as its Linux name (``comm``,
    15 bytes), so :func:`_thread_switches` can tell the Python threads apart."""
    import ctypes  # noqa: PLC0415
    import threading  # noqa: PLC0415

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap_inner(self: threading.Thread) -> None:
        prctl(15, self.name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
        inner(self)

    threading.Thread._bootstrap_inner = bootstrap_inner  # type: ignore[attr-defined]


def _print_threads(pids: list[int], before: list[dict[str, tuple[str, int]]], calls: int) -> None:
    """Print the wake-ups per call of each thread that slept at least once per 20 calls."""
    for who, pid, was in zip(("client", "hub", "worker"), pids, before, strict=True):
        now = _thread_switches(pid)
        rows = [(name, (n - was.get(tid, (name, 0))[1]) / calls) for tid, (name, n) in now.items()]
        print(
            f"  {who}: "
            + ", ".join(f"{name} {per:.2f}" for name, per in sorted(rows) if per >= 0.05)
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


#: The hops of one round trip, in order: (label, event, process).
HOPS: list[tuple[str, str]] = [
    ("delay() called", "client.delay.called"),
    ("client publish() called", "client.publish.called"),
    ("client sends PUB (caller or I/O thread)", "client.send.PUB"),
    ("hub receives PUB", "hub.recv.PUB"),
    ("hub commit starts (PUB handled)", "hub.commit.start"),
    ("hub commit done", "hub.commit.done"),
    ("hub sends TASK", "hub.send.TASK"),
    ("hub sends CONF", "hub.send.CONF"),
    ("worker connection receives TASK", "worker.recv.TASK"),
    ("connection: incoming handled", "worker.incoming.done"),
    ("connection hands the delivery", "worker.hand"),
    ("slot: on_receive", "slot.receive"),
    ("slot: execute", "slot.execute"),
    ("slot: task body starts", "worker.body.start"),
    ("slot: task body ends", "worker.body.end"),
    ("slot: outcome made", "slot.outcome"),
    ("slot: direct send tried", "slot.direct"),
    ("slot pushes its outcome", "slot.send.DONE"),
    ("connection pulls the outcome", "worker.pull.DONE"),
    ("worker sends DONE", "worker.send.DONE"),
    ("hub receives DONE", "hub.recv.DONE"),
    ("hub sends RES", "hub.send.RES"),
    ("client I/O thread receives CONF", "client.recv.CONF"),
    ("client I/O thread receives RES", "client.recv.RES"),
    ("I/O thread resolves the waiter", "client.waiter.woken"),
    ("get() returns (turn ends, wake-up)", "client.get.returned"),
]


def _hops(events: list[tuple[str, int]], trips: list[tuple[int, int]]) -> None:
    """Print the median and p90 time from each hop to the next over the round trips."""
    events.sort(key=lambda e: e[1])
    times = [t for _, t in events]
    import bisect  # noqa: PLC0415

    # A hop the code no longer passes through (a hand-off removed) is left out, not counted
    # as missing from every round trip.
    # So is one that most round trips skip (a CONF the hub held for the RES: said below).
    firsts: list[dict[str, int]] = []
    for start, end in trips:
        lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        first: dict[str, int] = {}
        for name, t in events[lo:hi]:
            first.setdefault(name, t)
        firsts.append(first)
    present = {label: sum(event in f for f in firsts) for label, event in HOPS}
    hops = [(label, event) for label, event in HOPS if present[label] * 2 > len(trips)]
    rare = [label for label, _ in HOPS if 0 < present[label] * 2 <= len(trips)]
    per_hop: dict[str, list[float]] = {label: [] for label, _ in hops}
    spans: list[float] = []
    for first in firsts:
        if any(event not in first for _, event in hops):
            continue
        spans.append((first[hops[-1][1]] - first[hops[0][1]]) / 1000)
        previous = first[hops[0][1]]
        for label, event in hops:
            per_hop[label].append((first[event] - previous) / 1000)
            previous = first[event]
    complete = len(spans)
    # The slowest 2% of the round trips (the p99's neighbourhood): which hop made them slow
    # (its median plus its mean excess over the median in those trips).
    slow = sorted(range(complete), key=spans.__getitem__)[complete - max(1, complete // 50) :]
    print(f"\nhops of {complete} complete traced round trips (µs since the previous hop)")
    print(f"{'hop':40s} {'p50':>7s} {'p90':>7s} {'slow 2%':>8s}")
    total = slow_total = 0.0
    for label, _ in hops:
        values = per_hop[label]
        if values:
            med = statistics.median(values)
            # Mean excess over the hop's median in the slow trips: where their time went.
            slow_med = med + sum(max(0.0, values[i] - med) for i in slow) / len(slow)
            total += med
            slow_total += slow_med
            print(f"{label:40s} {med:7.0f} {_percentile(values, 0.9):7.0f} {slow_med:8.0f}")
    print(f"{'sum of medians':40s} {total:7.0f} {'':7s} {slow_total:8.0f}")
    for label in rare:
        print(f"left out, in {present[label] / len(trips):.0%} of the round trips: {label}")


def main() -> None:
    """Start hub and worker, time the sequential round trips, print the trace if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--switch-interval", type=float, default=None)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the calling loop into FILE")
    parser.add_argument(
        "--threads", action="store_true", help="wake-ups per call of each thread of each process"
    )
    parser.add_argument(
        "--ipc", action="store_true", help="ipc:// instead of tcp://127.0.0.1 (a local hub only)"
    )
    parser.add_argument("--serve", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        _serve(args.serve)
        return
    run = Path(tempfile.mkdtemp(prefix="latency-"))
    broker = f"ipc://{run}/hub.ipc" if args.ipc else f"tcp://127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERIAC_", "LATENCY_"))}
    # EXTRA_PYTHONPATH: a probe's sitecustomize for the hub and worker (e.g. GC pauses).
    paths = [str(HERE), *filter(None, [os.environ.get("EXTRA_PYTHONPATH")])]
    env.update(LATENCY_BROKER=broker, PYTHONPATH=os.pathsep.join(paths))
    if args.trace:
        env[TRACE_ENV] = str(run / "trace")
    if args.switch_interval is not None:
        env[SWITCH_ENV] = str(args.switch_interval)
        sys.setswitchinterval(args.switch_interval)
    me = [sys.executable, str(Path(__file__).resolve()), "--serve"]
    hub = [*me, "hub", "--bind", broker, "--data-dir", str(run / "data"), "-l", "warning"]
    worker = [*me, "-A", "latency_trace", "worker", "-P", "threads", "-c", "2", "-l", "WARNING"]
    worker += ["-n", "latency", "--broker", broker, "--embedded-hub", "never"]
    log = open(run / "processes.log", "wb")  # noqa: SIM115 - closed at the end
    procs = [
        subprocess.Popen(cmd, env=env, cwd=run, stdout=log, stderr=log) for cmd in (hub, worker)
    ]
    try:
        _name_threads()
        app.conf.broker_url = broker
        if args.trace:
            _install("client", str(run / "trace.client.json"))
        add.delay(1, 1).get(timeout=60)  # everything is up
        for _ in range(200):  # warm up
            add.delay(1, 1).get(timeout=60)
        trips: list[tuple[int, int]] = []
        record: Callable[[tuple[str, int]], None] = _events.append
        pids = [os.getpid(), *(proc.pid for proc in procs)]
        cpu_before = [time.process_time(), *(_cpu(proc.pid) for proc in procs)]
        switches_before = [_switches(pid) for pid in pids]
        threads_before = [_thread_switches(pid) for pid in pids]
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        for _ in range(args.calls):
            start = _now()
            if _tracing:
                record(("client.delay.called", start))
            add.delay(1, 1).get(timeout=60)
            end = _now()
            if _tracing:
                record(("client.get.returned", end))
            trips.append((start, end))
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        cpu = [time.process_time(), *(_cpu(proc.pid) for proc in procs)]
        switches = [
            (a - b) / args.calls
            for a, b in zip([_switches(pid) for pid in pids], switches_before, strict=True)
        ]
        client_cpu, hub_cpu, worker_cpu = (
            (a - b) / args.calls * 1e6 for a, b in zip(cpu, cpu_before, strict=True)
        )
        micros = [(e - s) / 1000 for s, e in trips]
        print(
            f"{args.calls} sequential add(1, 1).get(), hub + worker -P threads -c 2"
            f"{' (traced)' if args.trace else ''}: p50 {_percentile(micros, 0.5):.0f} µs, "
            f"p90 {_percentile(micros, 0.9):.0f} µs, p99 {_percentile(micros, 0.99):.0f} µs; "
            f"CPU µs per call: client {client_cpu:.0f}, hub {hub_cpu:.0f}, "
            f"worker {worker_cpu:.0f}; "
            "thread wake-ups per call: "
            + ", ".join(
                f"{who} {n:.1f}"
                for who, n in zip(("client", "hub", "worker"), switches, strict=True)
            )
        )
        if args.threads:
            _print_threads(pids, threads_before, args.calls)
        app.close()
    finally:
        stop_processes(procs)
        log.close()
    if args.trace:
        events = list(_events)
        for role in ("hub", "worker"):
            dump = run / f"trace.{role}.json"
            if dump.exists():
                events += [(name, t) for name, t in json.loads(dump.read_text())]
            else:
                print(f"no trace from the {role} (see {run / 'processes.log'})")
        _hops(events, trips)


if __name__ == "__main__":
    import latency_trace  # one copy of this module: the worker imports it by that name too

    latency_trace.main()
