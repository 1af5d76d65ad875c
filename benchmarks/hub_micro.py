"""The hub's own cost per task, in microseconds, without sockets (issue 18).

Drives :class:`~celeriac.transport.hub.HubState` directly over a real SQLite store in a temporary
directory: one client and one worker, introduced with HELLO; then rounds of ``--batch``
publishes (PUB frames as a client sends them), the deliveries that follow (TASK frames, decoded
as a worker would), and the outcomes (DONE frames with results, pushed as RES to the waiting
client). Each phase is one hub loop turn as the server runs it: ``handle`` for every message,
``tick``, the commit unless the server's rule lets the turn leave it for later
(:mod:`~celeriac.transport.lazycommit`: a turn of ``DONE`` does), and the outbox coalesced per
peer. Prints the microseconds per task of each phase and their sum (the hub's ceiling is about
1e6 / total tasks per second on one core)::

    python benchmarks/hub_micro.py --tasks 20000 --batch 100

``--batch 1`` prices what a real run's hub mostly sees: a turn of one task, so the cost of a
turn and of a message (decode, dispatch, commit or not) is all in the per-task figure.

``--backlog 20000`` stores that many tasks (due in an hour) first: the store's tables then
have a real run's size (the hub is behind its publishers), not a hundred rows.

``--store postgresql://127.0.0.1/test`` runs the same hub over the PostgreSQL store (in a
schema of its own, dropped at the end); ``--store both`` runs SQLite, then PostgreSQL on
127.0.0.1, and prints them side by side with their ratio (issue 14: PostgreSQL at least half)::

    python benchmarks/hub_micro.py --store both
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from celeriac import App
from celeriac.transport import protocol as p

from celeriac._compose import compose
from celeriac._clock import SYSTEM_CLOCK
from celeriac.routing import declarations
from celeriac.transport.hub import HubState
from celeriac.transport.hub.outbox import coalesced as _coalesced
from celeriac.transport.lazycommit import LAZY_COMMANDS, LazyCommit
from celeriac.transport.store import SQLiteStore, Store

CLIENT, WORKER = b"client-1", b"worker-1"


class _Turns:
    """The hub's loop without sockets: handle, tick, commit (or not, as the server decides),
    and hand back the outbox coalesced as the server sends it."""

    def __init__(self, hub: HubState, store: Store) -> None:
        self.hub, self.store = hub, store
        self.lazy = LazyCommit(hub.clock)

    def turn(self, messages: list[tuple[bytes, list[bytes]]]) -> list[list[bytes]]:
        hub = self.hub
        lazy = bool(messages)
        for identity, frames in messages:
            lazy = lazy and frames[1] in LAZY_COMMANDS
            hub.handle(identity, frames)
        hub.tick()
        if not (lazy and self.lazy.may_defer(hub.outbox)):
            self.lazy.committed()
            self.store.commit()
        out = _coalesced(hub.outbox)
        hub.outbox.clear()
        hub.events.clear()
        return out


def _timed(
    totals: dict[str, float], phase: str, fn: Callable[[], list[list[bytes]]]
) -> list[list[bytes]]:
    start, cpu = time.perf_counter(), time.thread_time()
    out = fn()
    totals[phase] = totals.get(phase, 0.0) + time.perf_counter() - start
    cpu = time.thread_time() - cpu
    totals["cpu_turns"] = totals.get("cpu_turns", 0.0) + cpu
    totals[f"cpu_{phase}"] = totals.get(f"cpu_{phase}", 0.0) + cpu
    return out


@contextlib.contextmanager
def open_store(where: str, sync: str = "normal") -> Iterator[Store]:
    """``sqlite`` (a temporary file) or a PostgreSQL URL (a fresh schema, dropped after)."""
    if where == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield SQLiteStore(f"{tmp}/hub.sqlite3", sync=sync)
        return
    import psycopg  # noqa: PLC0415 - only for --store postgresql

    from celeriac.transport.store_postgres import PostgresStore  # noqa: PLC0415

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in where else "?"
    try:
        yield PostgresStore(f"{where}{sep}schema={schema}", sync=sync)
    finally:
        base = where.split("?", maxsplit=1)[0]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run(
    tasks: int,
    batch: int,
    results: bool,
    where: str = "sqlite",
    sync: str = "normal",
    backlog: int = 0,
) -> dict[str, float]:
    """Microseconds per task of each phase (and ``total``)."""
    app = App("hub_micro", broker="tcp://127.0.0.1:1")
    conf = app.conf
    with open_store(where, sync) as store:
        hub = HubState(store, SYSTEM_CLOCK, hub_id="micro")
        hub.events_wanted = False  # as a hub with no subscriber (the server follows them)
        loop = _Turns(hub, store)
        declare = p.declaration(*declarations(conf))
        loop.turn(
            [
                (CLIENT, p.encode(p.Hello("client", "bench-client", declare=declare))),
                (
                    WORKER,
                    p.encode(
                        p.Hello(
                            "worker",
                            "bench-worker",
                            pid=1,
                            queues=("celery",),
                            declare=declare,
                            credit=batch,
                        )
                    ),
                ),
            ]
        )
        now = time.time()
        for start in range(0, backlog, 1000):  # stored, due in an hour: a backlog's rows
            later = {"ignore_result": True, "eta": now + 3600}
            items = tuple(
                compose(conf, "bench.add", (1, 2), None, later, now)
                for _ in range(min(1000, backlog - start))
            )
            loop.turn([(CLIENT, p.encode(p.Publish(items)))])
        totals: dict[str, float] = {}
        cpu_hub, cpu_db = time.process_time(), _server_cpu(store)
        for start in range(0, tasks, batch):
            items = tuple(
                compose(conf, "bench.add", (1, 2), None, {"ignore_result": not results}, now)
                for _ in range(min(batch, tasks - start))
            )
            frames = p.encode(p.Publish(items))
            out = _timed(totals, "publish", lambda f=frames: loop.turn([(CLIENT, f)]))
            deliveries = [
                d
                for msg in out
                if msg[0] == WORKER
                for m in [p.decode(msg[1:])]
                if isinstance(m, p.Deliver)
                for d in m.deliveries
            ]
            done = p.Done(
                tuple(
                    p.ResultMessage(
                        d.task.id, "SUCCESS", body=b"3", tag=d.tag, store=results, credit=1
                    )
                    for d in deliveries
                )
            )
            dframes = p.encode(done)
            _timed(totals, "done", lambda f=dframes: loop.turn([(WORKER, f)]))
        cpu_hub, cpu_db = time.process_time() - cpu_hub, _server_cpu(store) - cpu_db
        store.close()
    cpu_turns = totals.pop("cpu_turns")
    cpu_phases = {k: totals.pop(k) / tasks * 1e6 for k in ("cpu_publish", "cpu_done")}
    per_task = {k: v / tasks * 1e6 for k, v in totals.items()}
    per_task["total"] = sum(per_task.values())
    # The hub's turns alone, in CPU time (the producer's and worker's encoding left out): the
    # figure to compare before/after on a loaded machine.
    per_task["cpu_turns"] = cpu_turns / tasks * 1e6
    per_task.update(cpu_phases)
    # CPU seconds per 1,000 tasks (less sensitive to a loaded machine than the wall clock):
    # this process (the hub, and the peers' encoding), and the PostgreSQL server process
    # serving the store's connection.
    per_task["cpu_hub"] = cpu_hub / tasks * 1000
    per_task["cpu_db"] = cpu_db / tasks * 1000
    return per_task


def _server_cpu(store: Store) -> float:
    """CPU seconds used so far by the PostgreSQL backend of ``store`` (0 for SQLite, whose
    work is in the hub's process), read from /proc: the server runs on this machine."""
    conn = getattr(store, "_conn", None)
    if conn is None:
        return 0.0
    fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Parse the options, run, print one line per phase."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="publishes per PUB message")
    parser.add_argument("--no-results", action="store_true", help="ignore_result tasks")
    parser.add_argument(
        "--store",
        default="sqlite",
        help="sqlite, a postgresql:// URL, or both (SQLite and postgresql://127.0.0.1/test)",
    )
    parser.add_argument(
        "--sync", default="normal", choices=("normal", "full"), help="hub_sync for both stores"
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=0,
        help="tasks stored first (due in an hour), as a hub behind its publishers holds",
    )
    args = parser.parse_args()
    stores = (
        ["sqlite", "postgresql://127.0.0.1:5432/test"] if args.store == "both" else [args.store]
    )
    runs = {
        where: run(args.tasks, args.batch, not args.no_results, where, args.sync, args.backlog)
        for where in stores
    }
    print(f"{'':8s} " + " ".join(f"{w.split('://')[0][:12]:>14s}" for w in stores))
    for phase in ("publish", "done", "total"):
        print(f"{phase:8s} " + " ".join(f"{runs[w][phase]:8.2f} us/task" for w in stores))
    print("turn CPU " + " ".join(f"{runs[w]['cpu_turns']:8.2f} us/task" for w in stores))
    for phase in ("publish", "done"):
        cpu = " ".join(f"{runs[w][f'cpu_{phase}']:8.2f} us/task" for w in stores)
        print(f"  {phase:7s}{cpu}")
    for phase, what in (("cpu_hub", "hub CPU"), ("cpu_db", "db CPU")):
        print(f"{what:8s} " + " ".join(f"{runs[w][phase]:8.3f} s/1000 " for w in stores))
    ceilings = [1e6 / runs[w]["total"] for w in stores]
    print("ceiling  " + " ".join(f"{c:8.0f} tasks/s" for c in ceilings))
    if len(stores) == 2:
        print(f"ratio    {ceilings[1] / ceilings[0]:.2f} ({stores[1]} / {stores[0]})")


if __name__ == "__main__":
    main()
