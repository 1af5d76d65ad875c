"""One hub on SQLite, one hub on PostgreSQL, two shared hubs on PostgreSQL (issue 14).

The hubs' own work per task, without sockets, as ``hub_micro.py`` measures it: the one-hub
columns are ``hub_micro.run``; the shared column drives two
:class:`~celeriac.transport.hub.shared.SharedHubState` on one fresh schema, a client on hub A
and a worker on hub B: A stores the publishes, B claims and delivers them, takes the outcomes
and stores the results, and A pushes them to its client when PostgreSQL's ``NOTIFY`` reaches
it. ``--delayed N`` first fills the schema with N delayed rows (an eta a day away), to show
what they cost the dispatch of the others (nothing: the claim index skips them)::

    python benchmarks/pg_hubs.py --tasks 5000 --batch 100 --delayed 100000
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

import psycopg
from hub_micro import _server_cpu, _Turns, run

from celeriac import App
from celeriac._clock import SYSTEM_CLOCK
from celeriac._compose import compose
from celeriac.routing import declarations
from celeriac.transport import protocol as p
from celeriac.transport.hub.shared import SharedHubState
from celeriac.transport.store_pg_shared import SharedPostgresStore

CLIENT, WORKER = b"client-1", b"worker-1"
PG = "postgresql://127.0.0.1:5432/test"


def _until(turn: Callable[[], int], wanted: int, timeout: float = 30.0) -> None:
    """Run hub turns until ``wanted`` items came out (bounded in time)."""
    got, deadline = 0, time.monotonic() + timeout
    while got < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {got} of {wanted} after {timeout} s")
        got += turn()


def _results(frames: list[bytes]) -> int:
    """How many results one message to the client pushes."""
    msg = p.decode(frames[1:])
    return len(msg.results) if isinstance(msg, p.Result) else 0


def run_shared(tasks: int, batch: int, delayed: int) -> dict[str, float]:
    """Microseconds per task of each phase through two shared hubs (and ``total``)."""
    conf = App("pg_hubs", broker="tcp://127.0.0.1:1").conf
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    url = f"{PG}?schema={schema}"
    stores = [SharedPostgresStore(url), SharedPostgresStore(url)]
    try:
        hubs = [
            SharedHubState(s, SYSTEM_CLOCK, hub_id=n) for s, n in zip(stores, "ab", strict=True)
        ]
        for hub, store in zip(hubs, stores, strict=True):
            hub.restore()
            store.commit()
            hub.start_listening()
        if delayed:
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(
                    f"INSERT INTO {schema}.messages (id, queue, priority, eta, seq, header, body)"
                    " SELECT 'delayed-' || g, 'celery', 0, extract(epoch FROM now()) + 86400,"
                    f" nextval('{schema}.message_seq'), '\\x00', '\\x00'"
                    " FROM generate_series(1, %s) g",
                    (delayed,),
                )
                conn.execute(f"ANALYZE {schema}.messages")
        a, b = (_Turns(h, s) for h, s in zip(hubs, stores, strict=True))
        declare = p.declaration(*declarations(conf))
        a.turn([(CLIENT, p.encode(p.Hello("client", "bench-client", declare=declare)))])
        hello = p.Hello("worker", "w", pid=1, queues=("celery",), declare=declare, credit=batch)
        b.turn([(WORKER, p.encode(hello))])
        totals: dict[str, float] = {}
        now = time.time()
        cpu_hub, cpu_db = time.process_time(), sum(_server_cpu(s) for s in stores)
        for start in range(0, tasks, batch):
            n = min(batch, tasks - start)
            items = tuple(compose(conf, "bench.add", (1, 2), None, {}, now) for _ in range(n))
            t0 = time.perf_counter()
            a.turn([(CLIENT, p.encode(p.Publish(items)))])
            t1 = time.perf_counter()
            deliveries: list[p.Delivery] = []

            def claim(out: list[p.Delivery] = deliveries) -> int:
                got = [
                    d
                    for m in b.turn([])
                    if m[0] == WORKER and isinstance(msg := p.decode(m[1:]), p.Deliver)
                    for d in msg.deliveries
                ]
                out.extend(got)
                return len(got)

            _until(claim, n)
            t2 = time.perf_counter()
            done = p.Done(
                tuple(
                    p.ResultMessage(d.task.id, "SUCCESS", body=b"3", tag=d.tag, credit=1)
                    for d in deliveries
                )
            )
            b.turn([(WORKER, p.encode(done))])
            t3 = time.perf_counter()
            _until(lambda: sum(_results(m) for m in a.turn([]) if m[0] == CLIENT), n)
            t4 = time.perf_counter()
            for phase, dt in (
                ("publish", t1 - t0),
                ("claim", t2 - t1),
                ("done", t3 - t2),
                ("push", t4 - t3),
            ):
                totals[phase] = totals.get(phase, 0.0) + dt
        cpu_hub = time.process_time() - cpu_hub
        cpu_db = sum(_server_cpu(s) for s in stores) - cpu_db
        for hub in hubs:
            hub.close()
    finally:
        for store in stores:
            store.abandon()
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    per_task = {k: v / tasks * 1e6 for k, v in totals.items()}
    per_task["total"] = sum(per_task.values())
    per_task["cpu_hub"] = cpu_hub / tasks * 1000
    per_task["cpu_db"] = cpu_db / tasks * 1000
    return per_task


def main() -> None:
    """Run the three set-ups and print microseconds per task and the ceilings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--delayed", type=int, default=0, help="delayed rows in the schema")
    args = parser.parse_args()
    one_sqlite = run(args.tasks, args.batch, True, "sqlite")
    one_pg = run(args.tasks, args.batch, True, PG)
    two_pg = run_shared(args.tasks, args.batch, 0)
    columns = {"1 hub sqlite": one_sqlite, "1 hub pg": one_pg, "2 hubs pg": two_pg}
    if args.delayed:
        columns[f"2 hubs +{args.delayed // 1000}k delayed"] = run_shared(
            args.tasks, args.batch, args.delayed
        )
    print(f"{'us/task':8s} " + " ".join(f"{name:>22s}" for name in columns))
    for phase in ("publish", "claim", "done", "push", "total"):
        print(
            f"{phase:8s} "
            + " ".join(
                f"{c[phase]:22.1f}" if phase in c else f"{'-':>22s}" for c in columns.values()
            )
        )
    print("ceiling  " + " ".join(f"{1e6 / c['total']:15.0f} tasks/s" for c in columns.values()))
    for key, what in (("cpu_hub", "hub CPU"), ("cpu_db", "db CPU")):
        print(f"{what:8s} " + " ".join(f"{c[key]:15.3f} s/1000 " for c in columns.values()))


if __name__ == "__main__":
    main()
