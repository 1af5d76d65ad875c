"""Several hubs in broker_url, with real processes: two standalone hubs (each its own SQLite
store), one worker and one client listing both; kill -9 the hub they use and they move to the
other: the client resends what was not confirmed, and new work goes through the second hub."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from celeriac import App

from .conftest import (
    RESULT_TIMEOUT,
    Spawner,
    TaskModule,
    clean_env,
    pick_port,
    read_events,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration

#: Publishes made while the first hub is dead: none confirmed there, all must run via the second.
AFTER_KILL = 20


def test_client_and_worker_move_to_the_next_hub(
    procs: Spawner, tmp_path: Path, tasks_module: TaskModule
) -> None:
    """Kill -9 the hub a client and a worker use: both log hub_failover to the other hub, the
    publishes the dead hub never confirmed are resent there and run, and new work goes through
    it (the seconds this takes are printed: three heartbeats of silence, then one round trip)."""
    url_a = f"tcp://127.0.0.1:{pick_port()}"
    url_b = f"tcp://127.0.0.1:{pick_port()}"
    hub_a = procs.hub(url_a, tmp_path / "hub-a", name="hub-a")
    hub_b = procs.hub(url_b, tmp_path / "hub-b", name="hub-b")
    both = f"{url_a};{url_b}"
    worker = procs.worker(both, cwd=tasks_module.dir, concurrency=2)
    assert wait_for_event(worker.log, "hub_connected")["endpoint"] == both
    wait_for_event(hub_a.log, "peer_joined")  # round-robin: the first listed hub

    client = App("client", broker=[url_a, url_b], environ={})
    try:
        assert client.send_task("itasks.add", (1, 2)).get(timeout=RESULT_TIMEOUT) == 3
        assert client._client().endpoint == url_a

        hub_a.kill9()
        killed, killed_at = time.monotonic(), time.time()
        results = [client.send_task("itasks.record") for _ in range(AFTER_KILL)]
        wait_until(lambda: client._client().endpoint == url_b, RESULT_TIMEOUT, "client failover")
        client_moved = time.monotonic() - killed
        results[0].get(timeout=RESULT_TIMEOUT)
        first_result = time.monotonic() - killed
        for r in results:
            assert isinstance(r.get(timeout=RESULT_TIMEOUT), int)
        all_results = time.monotonic() - killed
        fresh = client.send_task("itasks.add", (2, 3)).get(timeout=RESULT_TIMEOUT)
    finally:
        client.close()

    assert fresh == 5
    runs = Counter(tasks_module.ended())
    assert all(runs[r.id] == 1 for r in results)  # each resent publish ran, once
    moved = wait_for_event(worker.log, "hub_failover")
    assert (moved["from"], moved["to"]) == (url_a, url_b)
    worker_moved_in = datetime.fromisoformat(moved["timestamp"]).timestamp() - killed_at
    assert wait_for_event(hub_b.log, "peer_joined", count=2)  # the worker and the client
    welcomed = [r for r in read_events(worker.log) if r.get("event") == "hub_reconnected"]
    assert welcomed, "the worker said HELLO to the second hub and was welcomed"
    print(
        f"\nfailover after kill -9 (broker_heartbeat 2 s): worker moved in {worker_moved_in:.1f}s, "
        f"client in {client_moved:.1f}s, first resent task done in {first_result:.1f}s, "
        f"all {AFTER_KILL} in {all_results:.1f}s"
    )


def test_status_and_a_new_client_use_the_first_hub_that_answers(
    procs: Spawner, tmp_path: Path, tasks_module: TaskModule
) -> None:
    """broker_url's first hub is down: `celeriac status` (1 s timeout) and a new client ask the
    hubs at once and use the one that answers, without waiting out three heartbeats."""
    url_dead = f"tcp://127.0.0.1:{pick_port()}"  # nobody listens there
    url_b = f"tcp://127.0.0.1:{pick_port()}"
    procs.hub(url_b, tmp_path / "hub-b", name="hub-b")
    both = f"{url_dead};{url_b}"
    worker = procs.worker(both, cwd=tasks_module.dir, concurrency=1)
    probed = wait_for_event(worker.log, "hub_probed")
    assert (probed["chosen"], probed["answered"]) == (url_b, [url_b])

    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "celeriac", "-A", "itasks", "status", "--broker", both],
        cwd=tasks_module.dir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT * 2,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 node(s) online." in done.stdout
    status_took = time.monotonic() - began

    client = App("client", broker=both, environ={})
    try:
        began = time.monotonic()
        assert client.send_task("itasks.add", (2, 2)).get(timeout=RESULT_TIMEOUT) == 4
        first_result = time.monotonic() - began
        assert client._client().endpoint == url_b
    finally:
        client.close()
    print(
        f"\nfirst hub down: status took {status_took:.1f}s, "
        f"a new client's first result {first_result:.2f}s"
    )
