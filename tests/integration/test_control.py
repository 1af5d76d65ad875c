"""Remote control and inspection through the hub, with two real workers: one threads worker
and one prefork node (issue 9's "must be shown" list)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from celeriac import App
from celeriac.runtime.cli import cli

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
"""Tasks for the control tests."""

import os
import time

from celeriac import App, inspect_command

app = App("ctltasks")


@app.task(name="ctl.nap")
def nap(seconds):
    time.sleep(seconds)
    return os.getpid()


@app.task(name="ctl.add")
def add(x, y):
    return x + y


@app.task(name="ctl.stamp")
def stamp():
    return time.monotonic()


@inspect_command()
def num_tasks(state):
    """How many tasks this node knows."""
    return {"ok": len(state.app.tasks)}
'''


def _worker(procs: Spawner, app_dir: Path, url: str, name: str, *extra: str) -> Proc:
    argv = [sys.executable, "-m", "celeriac", "-A", "ctltasks", "worker", "--broker", url]
    argv += embed_if_free(url)  # given --broker, auto would wait for a hub
    argv += ["-n", name, "--log-format", "json", "-l", "INFO", *extra]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(procs.tmp_path / "hub"))
    proc = procs.spawn(name, argv, cwd=app_dir, env=env)
    wait_for_event(proc.log, "worker_ready", proc=proc)
    return proc


@pytest.fixture
def cluster(
    procs: Spawner, tmp_path: Path, broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Proc, Proc, Proc]:
    """A standalone hub, a threads worker ``t@x`` (queue celery) and a prefork node ``p@x``
    (two children, queue celery). ``sys.path`` is restored at the end: the app's folder, and
    the working directory the in-process CLI puts first (``-A``), would otherwise stay for the
    tests after (a spawned child would import the source tree's ``celeriac``)."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "ctltasks.py").write_text(textwrap.dedent(TASKS))
    monkeypatch.setattr(sys, "path", [str(app_dir), *sys.path])
    hub = procs.hub(broker_url, tmp_path / "hubdata")
    threads = _worker(procs, app_dir, broker_url, "t@x", "-P", "threads", "-c", "2")
    prefork = _worker(procs, app_dir, broker_url, "p@x", "-P", "prefork", "-c", "2")
    return hub, threads, prefork


def _pong_both(client: App) -> dict[str, object]:
    replies = client.control.inspect(timeout=2).ping() or {}
    return replies if {"t@x", "p@x"} <= set(replies) else {}


def test_two_workers_answer_inspect_and_control(
    cluster: tuple[Proc, Proc, Proc], client: App
) -> None:
    """ping both; active shows a running task on its worker; scheduled shows a countdown task;
    registered, stats, active_queues, conf, report, clock, query_task and a custom command
    answer; hub queues are inspected; a missing node is reported, not waited for."""
    _, threads, prefork = cluster
    replies = wait_until(lambda: _pong_both(client), 20, "both nodes to answer ping")
    assert replies["t@x"] == replies["p@x"] == {"ok": "pong"}

    inspect = client.control.inspect(timeout=10)
    registered = inspect.registered() or {}
    assert {"ctl.nap", "ctl.add"} <= set(registered["t@x"])
    assert "ctl.add" in registered["p@x"]
    stats = inspect.stats() or {}
    assert stats["t@x"]["pool"]["max-concurrency"] == 2
    assert stats["p@x"]["pool"]["max-concurrency"] == 2
    assert len(stats["p@x"]["pool"]["processes"]) == 2
    assert stats["t@x"]["pid"] == threads.pid
    assert stats["p@x"]["pid"] == prefork.pid
    queues = inspect.active_queues() or {}
    assert [q["name"] for q in queues["t@x"]] == ["celery"]
    assert (inspect.clock() or {})["t@x"]["clock"] > 0
    assert "ok" in (inspect.report() or {})["p@x"]
    assert (inspect.conf() or {})["t@x"]["broker_url"]
    assert (inspect.num_tasks() or {})["t@x"]["ok"] >= 3

    # active: a running task shows on the node that runs it
    running = client.send_task("ctl.nap", [3.0])
    found = wait_until(
        lambda: [
            n
            for n, tasks in (inspect.active() or {}).items()
            if any(t["id"] == running.id for t in tasks)
        ],
        15,
        "the nap task to show as active",
    )
    assert len(found) == 1
    node = found[0]
    pid_answer = running.get(timeout=RESULT_TIMEOUT)
    expected_pid = threads.pid if node == "t@x" else pid_answer
    assert pid_answer == expected_pid
    if node == "t@x":
        assert (inspect.query_task(running.id) or {}).get("t@x", {}) == {}  # finished now

    # scheduled: a countdown task waits at the hub, listed for both nodes (both consume it)
    later = client.send_task("ctl.add", [1, 2], countdown=30)
    scheduled = wait_until(inspect.scheduled, 10, "scheduled to answer")
    entries = scheduled["t@x"]
    assert [e["request"]["id"] for e in entries] == [later.id]
    assert entries[0]["request"]["args"] == [1, 2]
    assert entries[0]["eta"]
    hub_queues = client.control.hub("queues")
    assert hub_queues["celery"]["delayed"] == 1
    assert set(hub_queues["celery"]["consumers"]) >= {"t@x", "p@x/0", "p@x/1"}
    assert client.control.purge(["celery"]) == 1
    assert client.control.hub("queues")["celery"]["delayed"] == 0

    # a destination that is not there is reported missing at once
    started = time.monotonic()
    partial = client.control.inspect(destination=["t@x", "ghost@x"], timeout=30)
    assert partial.ping() == {"t@x": {"ok": "pong"}}
    assert partial.missing == ["ghost@x"]
    assert time.monotonic() - started < 15.0  # not the 30 s timeout

    # a node that is there but does not answer (stopped) is missing after the timeout
    os.kill(threads.pid, signal.SIGSTOP)
    try:
        # kill() returns before every thread has stopped: a command sent now could still be
        # answered. Wait until the kernel says the whole process is stopped.
        wait_until(lambda: _all_stopped(threads.pid), RESULT_TIMEOUT, "the node to stop")
        started = time.monotonic()
        frozen = client.control.inspect(timeout=3)
        assert frozen.ping() == {"p@x": {"ok": "pong"}}
        assert frozen.missing == ["t@x"]
        assert time.monotonic() - started < 10.0  # the timeout, not a hang
    finally:
        os.kill(threads.pid, signal.SIGCONT)


def _all_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped by a signal (state T in /proc)."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state == "T" for state in states)


def _cli(url: str, *argv: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["-A", "ctltasks", *argv, "-b", url], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_verbs(cluster: tuple[Proc, Proc, Proc], client: App, broker_url: str) -> None:
    """inspect, control, status, list bindings/queues, purge -f and call --eta/--expires work
    from the command line, readable and --json."""
    wait_until(lambda: _pong_both(client), 20, "both nodes to answer ping")
    assert json.loads(_cli(broker_url, "inspect", "ping", "--json", "-t", "10")) == {
        "p@x": {"ok": "pong"},
        "t@x": {"ok": "pong"},
    }
    out = _cli(broker_url, "inspect", "registered", "-d", "t@x", "-t", "10")
    assert "-> t@x: OK" in out
    assert "ctl.add" in out
    out = _cli(broker_url, "control", "add_consumer", "viacli", "-d", "t@x", "-t", "10")
    assert "add consumer viacli" in out
    out = _cli(broker_url, "status", "-t", "10")
    assert "t@x: OK" in out
    assert "2 node(s) online." in out
    assert "viacli" in _cli(broker_url, "list", "queues")
    bindings = json.loads(_cli(broker_url, "list", "bindings", "--json"))
    assert {"exchange": "celery", "queue": "celery", "routing_key": "celery", "type": "direct"} in (
        bindings
    )
    eta = "2099-01-01T00:00:00Z"
    task_id = _cli(broker_url, "call", "ctl.add", "-a", "[1, 1]", "--eta", eta, "--expires", "3600")
    assert client.control.hub("queues")["celery"]["delayed"] == 1
    assert "Purged 1 message(s) from celery." in _cli(broker_url, "purge", "-Q", "celery", "-f")
    assert task_id.strip()
    _cli(broker_url, "inspect", "nonsense", code=2)
    _cli(broker_url, "control", "pool_grow", "x", code=2)


def test_more_control_verbs(cluster: tuple[Proc, Proc, Proc], client: App, broker_url: str) -> None:
    """time_limit, events on/off, heartbeat, pool_shrink and autoscale answer on both pools;
    a threads pool says it cannot grow; the live events view prints tasks per state."""
    wait_until(lambda: _pong_both(client), 20, "both nodes to answer ping")
    control = client.control

    def ask(verb: str, **arguments: object) -> dict[str, object]:
        return control.request(verb, arguments, timeout=10)

    assert ask("time_limit", task_name="ctl.nap", soft=1.0, hard=2.0) == {
        "t@x": {"ok": "time limits set successfully"},
        "p@x": {"ok": "time limits set successfully"},
    }
    assert set(ask("enable_events")) == {"t@x", "p@x"}
    assert ask("heartbeat")["p@x"] == {"ok": "heartbeat sent"}
    grown = ask("pool_grow", n=1)
    assert "fixed size" in str(grown["t@x"])
    assert grown["p@x"] == {"ok": "pool will grow to 3"}
    assert ask("autoscale", max=3, min=1)["p@x"] == {"ok": "autoscale now max=3 min=1"}
    assert ask("pool_shrink", n=1)["p@x"] == {"ok": "pool will shrink to 2"}
    assert "unknown task" in str(ask("rate_limit", task_name="nope", rate_limit="1/s")["t@x"])
    assert "unknown command" in str(ask("no_such_command")["t@x"])
    out = _cli(broker_url, "events", "--limit", "3", "--timeout", "10")
    assert "celeriac events" in out
    assert set(ask("disable_events")) == {"t@x", "p@x"}
    assert client.control.hub("stats")["peers"]
    assert client.control.hub("dead_letters") == []


def test_consumers_rate_limit_pool_grow_and_shutdown(
    cluster: tuple[Proc, Proc, Proc], client: App
) -> None:
    """add_consumer/cancel_consumer change what a worker receives without a restart;
    rate_limit changes a running worker's rate (threads and prefork); pool_grow adds a
    prefork child; shutdown stops one worker and not the other."""
    _, threads, prefork = cluster
    wait_until(lambda: _pong_both(client), 20, "both nodes to answer ping")
    control = client.control

    # add_consumer: only t@x consumes "extra"; then it stops
    reply = control.add_consumer("extra", destination=["t@x"], reply=True, timeout=10)
    assert reply == [{"t@x": {"ok": "add consumer extra"}}]
    extra = client.send_task("ctl.nap", [0], queue="extra")
    assert extra.get(timeout=RESULT_TIMEOUT) == threads.pid
    queues = control.inspect(destination=["t@x"], timeout=10).active_queues() or {}
    assert "extra" in [q["name"] for q in queues["t@x"]]
    control.cancel_consumer("extra", destination=["t@x"], reply=True, timeout=10)
    pending = client.send_task("ctl.add", [2, 2], queue="extra")
    assert wait_until(
        lambda: control.hub("queues")["extra"]["ready"] == 1, 10, "extra to hold the task"
    )
    assert pending.state == "PENDING" or pending.state == "RECEIVED"

    # rate_limit: 2/s on t@x: 5 stamps take at least ~1.5 s there
    reply = control.rate_limit("ctl.stamp", "2/s", destination=["t@x"], reply=True, timeout=10)
    assert reply == [{"t@x": {"ok": "new rate limit set successfully"}}]
    control.add_consumer("solo_t", destination=["t@x"], reply=True, timeout=10)
    stamps = sorted(
        r.get(timeout=RESULT_TIMEOUT)
        for r in [client.send_task("ctl.stamp", queue="solo_t") for _ in range(5)]
    )
    assert stamps[-1] - stamps[0] >= 1.4

    # rate_limit on the prefork node: its parent's gate holds the rate for every child
    reply = control.rate_limit("ctl.stamp", "2/s", destination=["p@x"], reply=True, timeout=10)
    assert reply == [{"p@x": {"ok": "new rate limit set successfully"}}]
    control.add_consumer("solo_p", destination=["p@x"], reply=True, timeout=10)
    stamps = sorted(
        r.get(timeout=RESULT_TIMEOUT)
        for r in [client.send_task("ctl.stamp", queue="solo_p") for _ in range(5)]
    )
    assert stamps[-1] - stamps[0] >= 1.4

    # pool_grow: the prefork node gets a third child
    reply = control.pool_grow(1, destination=["p@x"], reply=True, timeout=10)
    assert reply == [{"p@x": {"ok": "pool will grow to 3"}}]
    wait_until(
        lambda: (
            len(
                ((control.inspect(destination=["p@x"], timeout=10).stats() or {}).get("p@x") or {})
                .get("pool", {})
                .get("processes", [])
            )
            == 3
        ),
        30,
        "a third prefork child",
    )

    # shutdown: p@x stops, t@x goes on
    control.shutdown(destination=["p@x"], reply=True, timeout=10)
    assert prefork.wait(30) == 0
    assert (control.inspect(timeout=10).ping() or {}) == {"t@x": {"ok": "pong"}}
    assert threads.popen.poll() is None


def test_worker_purge_empties_its_queues_before_consuming(
    procs: Spawner, tmp_path: Path, broker_url: str, client: App
) -> None:
    """`worker --purge` removes what waits in its queues at the hub, then runs new tasks."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "ctltasks.py").write_text(textwrap.dedent(TASKS))
    procs.hub(broker_url, tmp_path / "hubdata")
    stale = [client.send_task("ctl.add", [i, i]) for i in range(3)]
    client.flush(10)
    worker = _worker(procs, app_dir, broker_url, "purger@x", "-P", "threads", "--purge")
    purged = wait_for_event(worker.log, "queues_purged_at_start", proc=worker)
    assert purged["count"] == 3
    assert client.send_task("ctl.add", [20, 22]).get(timeout=RESULT_TIMEOUT) == 42
    assert [r.state for r in stale] == ["PENDING"] * 3
