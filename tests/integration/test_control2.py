"""Remote control, second pass (issue 9): a prefork node's ``active`` with arguments and its
``reserved`` deliveries, a long ``revoked`` reply in full, one copy of each task event on the
hub's PUB socket, and Celery's fields on a threads worker's worker-online event."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from celeriac import App
from celeriac.transport.endpoints import events_url

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    clean_env,
    embed_if_free,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration

TASKS = '''
"""Tasks for the second control tests."""

import time

from celeriac import App

app = App("ctl2tasks")
app.conf.worker_prefetch_multiplier = 4
app.conf.worker_prefetch_giveback = 120  # prefetched deliveries stay where they are
app.conf.task_track_started = True


@app.task(name="c2.nap")
def nap(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="c2.add")
def add(x, y):
    return x + y
'''


def _worker(procs: Spawner, app_dir: Path, url: str, name: str, *extra: str) -> Proc:
    argv = [sys.executable, "-m", "celeriac", "-A", "ctl2tasks", "worker", "--broker", url]
    argv += embed_if_free(url)  # given --broker, auto would wait for a hub
    argv += ["-n", name, "--log-format", "json", "-l", "INFO", *extra]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(procs.tmp_path / "hub"))
    proc = procs.spawn(name, argv, cwd=app_dir, env=env)
    wait_for_event(proc.log, "worker_ready", proc=proc)
    return proc


class _Sub:
    """A raw subscriber of the hub's PUB socket: every message as (topic, map)."""

    def __init__(self, url: str) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.sock: zmq.Socket[Any] = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(url)
        self.got: list[tuple[str, dict[str, Any]]] = []

    def read(self) -> list[tuple[str, dict[str, Any]]]:
        while self.sock.poll(50):
            topic, payload = self.sock.recv_multipart()
            self.got.append((topic.decode(), msgpack.unpackb(payload, raw=False)))
        return self.got

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


def test_prefork_inspect_long_replies_and_single_event_copies(
    procs: Spawner, tmp_path: Path, broker_url: str, client: App
) -> None:
    """A prefork node answers ``active`` with the running task's args and ``reserved`` with
    what its child prefetched; ``revoked`` with 5,000 ids comes back whole; a worker with -E
    puts each task event on the wire once; worker-online carries sw_ident/sw_ver/sw_sys/freq."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "ctl2tasks.py").write_text(textwrap.dedent(TASKS))
    procs.hub(broker_url, tmp_path / "hubdata")
    sub = _Sub(events_url(broker_url))
    try:
        probe = client._client()  # its event reaches the SUB socket once it is connected

        def subscribed() -> bool:
            probe.send_events([{"type": "c2-probe"}])
            return any(t == "c2-probe" for t, _ in sub.read())

        wait_until(subscribed, 10, "the SUB socket to receive")
        _worker(procs, app_dir, broker_url, "t@x", "-P", "threads", "-c", "1", "-E", "-Q", "tq")
        _worker(procs, app_dir, broker_url, "p@x", "-P", "prefork", "-c", "1", "-Q", "pq")

        # a prefork node: active with arguments, reserved with the child's prefetched tasks
        running = client.send_task("c2.nap", [6.0], queue="pq")
        waiting = [client.send_task("c2.add", [i, 1], queue="pq") for i in range(2)]
        inspect = client.control.inspect(destination=["p@x"], timeout=10)

        def active() -> list[dict[str, Any]]:
            tasks = (inspect.active() or {}).get("p@x", [])
            # args None: the child was too slow to answer (CHILD_WAIT), the parent's view
            return [t for t in tasks if t["id"] == running.id and t["args"] is not None]

        (shown,) = wait_until(active, 20, "the nap task active on p@x")
        assert shown["args"] == [6.0]
        assert shown["kwargs"] == {}
        assert shown["hostname"] == "p@x"
        assert shown["worker_pid"] not in (None, 0)

        def reserved() -> list[dict[str, Any]]:
            tasks = (inspect.reserved() or {}).get("p@x", [])
            ids = {w.id for w in waiting}
            return tasks if ids <= {t["id"] for t in tasks} else []

        held = wait_until(reserved, 20, "the add tasks reserved on p@x")
        assert sorted(t["args"] for t in held if t["name"] == "c2.add") == [[0, 1], [1, 1]]
        assert all(t["acknowledged"] is False for t in held)
        found = wait_until(
            lambda: (inspect.query_task(waiting[0].id) or {}).get("p@x"), 20, "query_task"
        )
        assert found[waiting[0].id][0] == "reserved"
        assert running.get(timeout=RESULT_TIMEOUT) == 6.0
        assert [w.get(timeout=RESULT_TIMEOUT) for w in waiting] == [1, 2]

        # a long reply: every revoked id comes back (~80 KB, more than one message)
        ids = [f"revoked-{i:06d}" for i in range(5_000)]
        for i in range(0, len(ids), 1_000):
            client.control.revoke(ids[i : i + 1_000])
        revoked = client.control.inspect(destination=["t@x"], timeout=10).revoked() or {}
        assert set(ids) <= set(revoked["t@x"])

        # one copy of each event of a task's life on the raw PUB socket (-E and the hub)
        result = client.send_task("c2.add", [2, 3], queue="tq")
        assert result.get(timeout=RESULT_TIMEOUT) == 5

        def life() -> list[str]:
            kinds = [
                e.get("type", t) for t, e in sub.read() if result.id in (e.get("uuid"), e.get("id"))
            ]
            return kinds if "task-succeeded" in kinds else []

        kinds = wait_until(life, 20, "the task's events on the PUB socket")
        after = client.send_task("c2.add", [0, 0], queue="tq")  # events keep their order:
        assert after.get(timeout=RESULT_TIMEOUT) == 0  # a late copy would come before its own
        wait_until(
            lambda: any(e.get("uuid") == after.id and t == "task-succeeded" for t, e in sub.read()),
            20,
            "the next task's task-succeeded",
        )
        kinds = life()
        for kind in ("task-received", "task-started", "task-succeeded"):
            assert kinds.count(kind) == 1, kinds

        # worker-online of the threads worker has Celery's fields
        online = [e for t, e in sub.read() if t == "worker-online" and e.get("hostname") == "t@x"]
        assert online, sub.got
        assert online[0]["sw_ident"] == "celeriac"
        assert online[0]["sw_ver"]
        assert online[0]["sw_sys"]
        assert online[0]["freq"] > 0
        assert online[0]["pid"] > 0
    finally:
        sub.close()
