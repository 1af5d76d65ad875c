"""Several hubs on one PostgreSQL schema (``celeriac hub --shared``), real processes.

Two hubs share a fresh schema; every peer connects to one hub explicitly: a client on one and
a worker on the other get their tasks run and their results; a hub killed -9 mid-run loses no
confirmed task (the other's reaper takes its leases back); a chord whose header tasks end
through both hubs runs its body once; a lock taken through one hub is seen through the other;
a client of one hub publishes to a queue only the other hub's worker declared.
With failover (a list of hubs in ``broker_url``), a client and a worker on the hub that is
killed move to the other and every confirmed task still ends with its result.
Skipped, saying why, where no PostgreSQL server answers (``pg_url`` in tests/conftest.py).
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import zmq

from celeriac import App, chord
from celeriac.transport import protocol as p

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    TaskModule,
    clean_env,
    count_events,
    pick_port,
    wait_for_event,
    wait_until,
)
from .test_hub_postgres import Peer, hub_behind_relay, publish

pytestmark = pytest.mark.integration

#: A worker never starts a hub of its own here: each talks to the hub it is given.
WORKER_ENV = {"CELERIAC_WORKER_EMBEDDED_HUB": "never"}

CHORD_SOURCE = '''
"""A chord's header and body, each run logged with the worker's pid."""

import os
import time

from celeriac import App

app = App("ctasks")
LOG = {log!r}


def _append(line):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)


@app.task(name="ctasks.part")
def part(n):
    time.sleep(0.05)
    _append(f"part {{n}} {{os.getpid()}}")
    return n


@app.task(name="ctasks.total")
def total(parts):
    _append(f"body {{os.getpid()}}")
    return sum(parts)
'''


#: The lease of the tests that kill a shared hub: the survivor reaps the dead one's rows after
#: this many seconds (the default, 10 s, would be most of each such test's time).
KILL_LEASE_TTL = 4.0


def shared_hub(
    procs: Spawner, url: str, store: str, name: str, lease_ttl: float | None = None
) -> Proc:
    """``celeriac hub --store URL --shared`` at ``url``, started and ready (with
    ``hub_shared_lease_ttl`` = ``lease_ttl`` when given)."""
    argv = [sys.executable, "-m", "celeriac", "hub", "--bind", url, "--shared"]
    argv += ["--data-dir", str(procs.tmp_path / name), "--log-format", "json", "--store", store]
    env = clean_env()
    if lease_ttl is not None:
        env["CELERIAC_HUB_SHARED_LEASE_TTL"] = str(lease_ttl)
    proc = procs.spawn(name, argv, cwd=procs.tmp_path, env=env)
    wait_for_event(proc.log, "hub_started", proc=proc)
    return proc


def two_hubs(
    procs: Spawner, broker_url: str, pg_url: str, lease_ttl: float | None = None
) -> tuple[str, str, Proc, Proc]:
    """Hubs A (at ``broker_url``) and B (another port) on the schema of ``pg_url``."""
    url_b = f"tcp://127.0.0.1:{pick_port()}"
    hub_a = shared_hub(procs, broker_url, pg_url, "hub-a", lease_ttl)
    hub_b = shared_hub(procs, url_b, pg_url, "hub-b", lease_ttl)
    return broker_url, url_b, hub_a, hub_b


def test_a_client_on_one_hub_gets_results_from_a_worker_on_the_other(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, pg_url: str
) -> None:
    """Client on A, worker on B: every task runs once through B, every result (and a late
    ``get`` of one already stored) comes back through A."""
    url_a, url_b, _, _ = two_hubs(procs, broker_url, pg_url)
    procs.worker(url_b, cwd=tasks_module.dir, concurrency=4, env=clean_env(**WORKER_ENV))
    client = App("client", broker=url_a, environ={})
    try:
        results = [client.send_task("itasks.add", args=(i, i)) for i in range(60)]
        assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [2 * i for i in range(60)]
        late = client.send_task("itasks.record")
        late_id = late.id
        wait_until(lambda: late_id in tasks_module.ended(), RESULT_TIMEOUT, what="a run")
        assert isinstance(client.AsyncResult(late_id).get(timeout=RESULT_TIMEOUT), int)
    finally:
        client.close()
    assert Counter(tasks_module.ended()) == {late_id: 1}


def test_a_hub_killed_mid_run_loses_no_confirmed_task(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, pg_url: str
) -> None:
    """A worker on each hub, the client on B; kill -9 of A midway: B's reaper takes A's
    leases back and every confirmed task ends with its result (those A's worker held may run
    twice: at-least-once)."""
    url_a, url_b, hub_a, hub_b = two_hubs(procs, broker_url, pg_url, KILL_LEASE_TTL)
    env = clean_env(**WORKER_ENV)
    procs.worker(url_a, cwd=tasks_module.dir, concurrency=2, env=env, name="worker-a")
    procs.worker(url_b, cwd=tasks_module.dir, concurrency=2, env=env, name="worker-b")
    client = App("client", broker=url_b, environ={})
    try:
        results = [client.send_task("itasks.record", args=(0.01,)) for _ in range(200)]
        client.flush(RESULT_TIMEOUT)  # every publish confirmed: in the table
        wait_until(lambda: len(tasks_module.ended()) >= 50, RESULT_TIMEOUT, what="a quarter to run")
        hub_a.kill9()
        assert len(tasks_module.ended()) < 200, "the kill came too late to prove anything"
        for r in results:
            assert isinstance(r.get(timeout=RESULT_TIMEOUT * 2), int)
    finally:
        client.close()
    assert set(tasks_module.ended()) == {r.id for r in results}
    assert count_events(hub_b.log, "hub_leases_reaped") >= 1, "A held nothing at its death"


def test_a_chord_whose_header_ends_through_both_hubs_runs_its_body_once(
    procs: Spawner, broker_url: str, tmp_path: Path, pg_url: str
) -> None:
    """Header tasks run by a worker of each hub; the counter lives in the table: the body
    runs exactly once, with every header result."""
    app_dir = tmp_path / "capp"
    app_dir.mkdir()
    log = tmp_path / "chord.log"
    (app_dir / "ctasks.py").write_text(textwrap.dedent(CHORD_SOURCE.format(log=str(log))))
    url_a, url_b, _, _ = two_hubs(procs, broker_url, pg_url)
    env = clean_env(**WORKER_ENV)
    for url, name in ((url_a, "worker-a"), (url_b, "worker-b")):
        procs.worker(url, cwd=app_dir, app="ctasks", concurrency=2, env=env, name=name)
    client = App("client", broker=url_a, environ={})
    try:
        header = [client.signature("ctasks.part", args=(i,)) for i in range(40)]
        body = client.signature("ctasks.total")
        assert chord(header)(body).get(timeout=RESULT_TIMEOUT * 2) == sum(range(40))
    finally:
        client.close()
    lines = log.read_text().splitlines()
    assert sum(1 for line in lines if line.startswith("body ")) == 1
    header_pids = {line.split()[2] for line in lines if line.startswith("part ")}
    assert len(header_pids) >= 2, "the header ran through one hub only: nothing proven"


def test_a_lock_taken_through_one_hub_is_seen_through_the_other(
    procs: Spawner, broker_url: str, pg_url: str
) -> None:
    """A lock held through A is LOCKED through B, and free for B once A's holder releases."""
    url_a, url_b, _, _ = two_hubs(procs, broker_url, pg_url)
    one = App("one", broker=url_a, environ={})
    two = App("two", broker=url_b, environ={})
    try:
        first = one.lock("shared-resource", expire=60)
        assert first.acquire(blocking=False)
        second = two.lock("shared-resource", expire=60)
        assert second.locked()
        assert not second.acquire(blocking=False)
        first.release()
        assert not second.locked()
        assert second.acquire(blocking=True, timeout=RESULT_TIMEOUT)
        assert one.lock("shared-resource", expire=60).locked()
        second.release()
    finally:
        one.close()
        two.close()


def test_postgresql_going_away_from_a_shared_hub_then_back(pg_url: str, tmp_path: Path) -> None:
    """A shared hub's PostgreSQL connection is cut (a relay stops): publishes are NACKed 'hub
    store unavailable', nothing crashes; it comes back: publishes are confirmed and delivered
    again, and the task whose acknowledgement was lost meanwhile is delivered again rather
    than stranded (at-least-once)."""
    relay, ctx, hub = hub_behind_relay(pg_url, tmp_path, shared=True)
    try:
        decl = p.Declare(queues=(p.QueueDecl("q"),))
        client = Peer(ctx, hub.endpoint, p.Hello("client", "c", declare=decl))
        hello = p.Hello("worker", "w", pid=1, queues=("q",), credit=5, declare=decl)
        worker = Peer(ctx, hub.endpoint, hello)
        assert isinstance(publish(client), p.Confirm)
        (first,) = worker.recv(p.Deliver, timeout=RESULT_TIMEOUT).deliveries
        relay.stop()
        worker.send(p.Done((p.ResultMessage(first.task.id, "SUCCESS", b"1", tag=first.tag),)))
        answer = publish(client)
        assert isinstance(answer, p.Nack)
        assert answer.refusals[0].reason.startswith("hub store unavailable")
        relay.start()
        wait_until(lambda: isinstance(publish(client), p.Confirm), 30.0, "publishes accepted")
        ids: set[str] = set()
        for _ in range(10):  # the first task again (its ack was lost) and the last publish
            if first.task.id in ids and len(ids) >= 2:
                break
            ids.update(d.task.id for d in worker.recv(p.Deliver, RESULT_TIMEOUT).deliveries)
        assert first.task.id in ids
        assert len(ids) >= 2
        assert hub.state.counters["internal_errors"] == 0
    finally:
        hub.stop()
        relay.stop()
        ctx.destroy(linger=0)


def test_with_failover_a_hub_killed_mid_run_loses_nothing_confirmed(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, pg_url: str
) -> None:
    """Client and worker list both shared hubs and use A; kill -9 of A midway: both move to
    B, and every task confirmed before or after the kill ends with its result (what A had
    queued is in the table; what its worker held comes back when B takes A's leases)."""
    url_a, url_b, hub_a, _ = two_hubs(procs, broker_url, pg_url, KILL_LEASE_TTL)
    both = f"{url_a};{url_b}"
    procs.worker(both, cwd=tasks_module.dir, concurrency=2, env=clean_env())
    client = App("client", broker=[url_a, url_b], environ={})
    try:
        before = [client.send_task("itasks.record", args=(0.01,)) for _ in range(100)]
        client.flush(RESULT_TIMEOUT)
        wait_until(lambda: len(tasks_module.ended()) >= 20, RESULT_TIMEOUT, what="some to run")
        assert client._client().endpoint == url_a
        hub_a.kill9()
        after = [client.send_task("itasks.record") for _ in range(20)]
        for r in before + after:
            assert isinstance(r.get(timeout=RESULT_TIMEOUT * 3), int)
    finally:
        client.close()
    assert set(tasks_module.ended()) == {r.id for r in before + after}


def test_a_client_of_one_hub_publishes_to_a_queue_only_the_others_worker_declared(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, pg_url: str
) -> None:
    """The worker on A declares and consumes ``orders`` (its default queue); a client of B
    that declares nothing publishes to ``orders``: confirmed, not refused as unroutable, and
    the task runs on A's worker."""
    url_a, url_b, _, _ = two_hubs(procs, broker_url, pg_url)
    env = clean_env(CELERIAC_TASK_DEFAULT_QUEUE="orders", **WORKER_ENV)
    procs.worker(url_a, cwd=tasks_module.dir, concurrency=2, env=env)
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        client = Peer(ctx, url_b, p.Hello("client", "undeclared"))
        ids = [uuid.uuid4().hex for _ in range(3)]
        for task_id in ids:
            task = p.TaskMessage(task_id, "itasks.record", b"[[], {}, {}]", queue="orders")
            client.send(p.Publish((task,)))
            answer = client.recv(p.Confirm | p.Nack)
            assert isinstance(answer, p.Confirm), answer
        wait_until(
            lambda: set(ids) <= set(tasks_module.ended()), RESULT_TIMEOUT, what="the three runs"
        )
    finally:
        ctx.destroy(linger=0)
    assert Counter(tasks_module.ended()) == dict.fromkeys(ids, 1)
