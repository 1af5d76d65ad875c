"""Several machines for real: a hub, workers and clients in network namespaces on one LAN.

Each test builds its hosts (:class:`~tests.integration.netns.Lan`: namespaces joined by veth
pairs on a bridge, names in their hosts files) and runs every node through the real CLI on its
host. Skipped, with the reason, where namespaces cannot be made (not root, no iproute2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    TaskModule,
    clean_env,
    count_events,
    read_events,
    wait_for_event,
    wait_until,
)
from .netns import Host, Lan, lan_unavailable

_WHY_NOT = lan_unavailable()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_WHY_NOT is not None, reason=f"multi-host tests: {_WHY_NOT}"),
]

PORT = 5555

#: Run on a client host: send tasks, print what came back as JSON lines.
CLIENT_SOURCE = """
import json, sys
from itasks import add, app, record

command = sys.argv[1]
if command == "adds":
    results = [add.delay(i, i) for i in range(int(sys.argv[2]))]
    print(json.dumps([r.get(timeout=60) for r in results]), flush=True)
elif command == "records":
    results = [record.delay(float(sys.argv[3])) for _ in range(int(sys.argv[2]))]
    print(json.dumps([r.id for r in results]), flush=True)
    print(json.dumps([r.get(timeout=90) for r in results]), flush=True)
app.close()
"""


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Three hosts, machine-a, machine-b and machine-c, on one switch."""
    network = Lan()
    try:
        for name in ("machine-a", "machine-b", "machine-c"):
            network.add(name)
        yield network
    finally:
        network.close()


class Cluster:
    """Starts hubs, workers and clients on the LAN's hosts (all through :class:`Spawner`)."""

    def __init__(self, procs: Spawner, lan: Lan, tasks: TaskModule, tmp_path: Path) -> None:
        self.procs, self.lan, self.tasks = procs, lan, tasks
        self.data_dir = tmp_path / "hub-data"
        (tasks.dir / "client.py").write_text(CLIENT_SOURCE)

    def host(self, name: str) -> Host:
        """The host called ``name``."""
        return self.lan.hosts[name]

    def hub(self, on: str, bind: str) -> Proc:
        """``celeriac hub --bind <bind>`` on host ``on``; waits until it serves."""
        argv = [sys.executable, "-m", "celeriac", "hub", "--bind", bind]
        argv += ["--data-dir", str(self.data_dir), "--log-format", "json"]
        proc = self.procs.spawn(
            "hub", self.host(on).argv(*argv), cwd=self.tasks.dir, env=clean_env()
        )
        wait_for_event(proc.log, "hub_started", proc=proc)
        return proc

    def worker(self, on: str, broker: str, *extra: str, wait: bool = True) -> Proc:
        """``celeriac -A itasks worker --broker <broker>`` on host ``on``."""
        argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker]
        argv += ["--log-format", "json", "-l", "INFO", *extra]
        # An embedded hub would be a bug here: its data would land in this directory.
        env = clean_env(CELERIAC_HUB_DATA_DIR=str(self.tasks.dir / "must-not-exist"))
        proc = self.procs.spawn("worker", self.host(on).argv(*argv), cwd=self.tasks.dir, env=env)
        if wait:
            wait_for_event(proc.log, "worker_ready", proc=proc)
        return proc

    def client(self, on: str, broker: str, *args: str) -> subprocess.Popen[str]:
        """The client script on host ``on`` (its stdout is JSON lines)."""
        return subprocess.Popen(
            self.host(on).argv(sys.executable, "client.py", *args),
            cwd=self.tasks.dir,
            env=clean_env(CELERIAC_BROKER_URL=broker),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run_client(self, on: str, broker: str, *args: str) -> list[Any]:
        """Run the client script to the end; its JSON lines."""
        proc = self.client(on, broker, *args)
        try:
            out, err = proc.communicate(timeout=RESULT_TIMEOUT * 3)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"client on {on} timed out: {err[-2000:]}")
        assert proc.returncode == 0, f"client on {on} failed: {err[-2000:]}"
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def cluster(
    procs: Spawner, lan: Lan, tasks_module: TaskModule, tmp_path: Path
) -> Iterator[Cluster]:
    """Nodes on the LAN; every process is killed before the namespaces go."""
    yield Cluster(procs, lan, tasks_module, tmp_path)
    procs.shutdown()


def _started_by(tasks: TaskModule, ids: list[str]) -> dict[str, list[int]]:
    """For each task id, the pids that started it (in order)."""
    runs: dict[str, list[int]] = {tid: [] for tid in ids}
    for phase, tid, pid in tasks.executions():
        if phase == "start" and tid in runs:
            runs[tid].append(pid)
    return runs


def test_workers_on_other_hosts_serve_a_remote_hub_and_survive_its_restart(
    cluster: Cluster,
) -> None:
    """Hub on A bound to A's address; a threads and a prefork worker on B reach it by name;
    a client on C gets every result; the hub is killed and restarted on A and B's workers
    reconnect by themselves and serve again."""
    a = cluster.host("machine-a")
    hub = cluster.hub("machine-a", f"tcp://{a.ipv4}:{PORT}")
    by_name = f"tcp://machine-a:{PORT}"
    threads_b = cluster.worker("machine-b", by_name, "-c", "2", "-n", "threads-b")
    prefork_b = cluster.worker("machine-b", by_name, "-P", "prefork", "-c", "2", "-n", "fork-b")
    assert not (cluster.tasks.dir / "must-not-exist").exists()

    [sums] = cluster.run_client("machine-c", by_name, "adds", "20")
    assert sums == [2 * i for i in range(20)]
    ids, pids = cluster.run_client("machine-c", by_name, "records", "8", "0.3")
    assert len(pids) == 8
    assert len(set(pids)) >= 2, "8 tasks of 0.3 s on 4 slots in two nodes ran in one process"
    assert {pid for runs in _started_by(cluster.tasks, ids).values() for pid in runs} == set(pids)

    hub.kill9()
    cluster.hub("machine-a", f"tcp://{a.ipv4}:{PORT}")
    wait_for_event(threads_b.log, "hub_reconnected", timeout=RESULT_TIMEOUT, proc=threads_b)
    [sums] = cluster.run_client("machine-b", f"tcp://{a.ipv4}:{PORT}", "adds", "10")
    assert sums == [2 * i for i in range(10)]
    assert prefork_b.popen.poll() is None
    assert threads_b.popen.poll() is None


def test_a_killed_worker_s_tasks_are_taken_over_on_a_third_host(cluster: Cluster) -> None:
    """kill -9 of the only worker (on B) while it runs two tasks: a worker started on C runs
    them, and the client on C gets both results."""
    hub_url = f"tcp://machine-a:{PORT}"
    cluster.hub("machine-a", f"tcp://0.0.0.0:{PORT}")
    worker_b = cluster.worker("machine-b", hub_url, "-c", "2")
    client = cluster.client("machine-c", hub_url, "records", "2", "3")
    assert client.stdout is not None
    ids = json.loads(client.stdout.readline())
    wait_until(
        lambda: all(_started_by(cluster.tasks, ids).values()),
        RESULT_TIMEOUT,
        "both tasks started on B",
        worker_b,
    )
    worker_b.kill9()
    worker_c = cluster.worker("machine-c", hub_url, "-c", "2")
    out, err = client.communicate(timeout=RESULT_TIMEOUT * 3)
    assert client.returncode == 0, err[-2000:]
    pids = json.loads(out.splitlines()[-1])
    assert set(pids) == {worker_c.pid}
    runs = _started_by(cluster.tasks, ids)
    assert all(starts == [worker_b.pid, worker_c.pid] for starts in runs.values()), runs


def test_a_worker_waits_for_a_hub_that_is_not_up_yet(cluster: Cluster) -> None:
    """A worker on B started before the hub on A says it is waiting (no traceback, no bind)
    and serves as soon as the hub appears."""
    a = cluster.host("machine-a")
    url = f"tcp://{a.ipv4}:{PORT}"
    worker = cluster.worker("machine-b", url, wait=False)
    waiting = wait_for_event(worker.log, "waiting_for_hub", proc=worker)
    assert waiting["endpoint"] == url
    assert count_events(worker.log, "embedded_hub_started") == 0
    cluster.hub("machine-a", url)
    wait_for_event(worker.log, "worker_ready", timeout=RESULT_TIMEOUT, proc=worker)
    [sums] = cluster.run_client("machine-b", url, "adds", "5")
    assert sums == [0, 2, 4, 6, 8]
    assert "Traceback" not in worker.log.read_text()


def test_ipv6_literal_addresses(cluster: Cluster) -> None:
    """A hub bound to an IPv6 literal on A; a worker and a client on B reach it as
    tcp://[fd00:231::1]:PORT, and the events port follows it."""
    a = cluster.host("machine-a")
    url = f"tcp://[{a.ipv6}]:{PORT}"
    hub = cluster.hub("machine-a", url)
    started = next(r for r in read_events(hub.log) if r.get("event") == "hub_started")
    assert started["events"] == f"tcp://[{a.ipv6}]:{PORT + 1}"
    cluster.worker("machine-b", url)
    [sums] = cluster.run_client("machine-b", url, "adds", "5")
    assert sums == [0, 2, 4, 6, 8]
