"""The embedded hub in a child process of its worker (``worker_embedded_hub_process``): it dies
with its worker (threads or prefork), a worker started again finds its data, and a hub process
that dies alone is started again (or the worker stops, saying why)."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import zmq

from celeriac import App
from celeriac.actors.restart import RestartPolicy
from celeriac.runtime.embedded_process import HubProcess
from celeriac.transport import protocol as p
from celeriac.transport.curve import generate_keys

from .conftest import (
    RESULT_TIMEOUT,
    START_TIMEOUT,
    Proc,
    Spawner,
    TaskModule,
    clean_env,
    count_events,
    listening,
    pick_port,
    read_events,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration


def _env(tmp_path: Path) -> dict[str, str]:
    """A worker's environment: its hub in a process, its data in the test's directory."""
    return clean_env(
        CELERIAC_HUB_DATA_DIR=str(tmp_path / "embedded-hub"),
        CELERIAC_WORKER_EMBEDDED_HUB_PROCESS="true",
    )


def _hub_pid(worker: Proc) -> int:
    started = wait_for_event(worker.log, "embedded_hub_started", proc=worker)
    assert started["process"] is True
    assert started["pid"] != worker.pid
    return int(started["pid"])


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _ready(client: App, queue: str) -> int:
    return int(client.control.hub("queues").get(queue, {}).get("ready", 0))


def test_kill9_of_the_worker_takes_its_hub_along_and_a_restart_finds_the_data(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """kill -9 of a worker ends its hub's process too (the kernel's PR_SET_PDEATHSIG); a worker
    started again on the same address and data directory runs the tasks the first one's hub had
    stored."""
    env = _env(tmp_path)
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker_url]
    argv += ["--log-format", "json", "-l", "INFO", "--embedded-hub", "always", "-Q", "elsewhere"]
    first = procs.spawn("first", argv, cwd=tasks_module.dir, env=env)
    wait_for_event(first.log, "worker_ready", proc=first)
    hub_pid = _hub_pid(first)
    results = [client.send_task("itasks.add", [i, i]) for i in range(5)]
    wait_until(lambda: _ready(client, "celery") == 5, RESULT_TIMEOUT, "5 tasks stored")

    first.kill9()
    wait_until(lambda: _gone(hub_pid), 10, "the hub's process to die with its worker")
    # Its main thread can be a zombie while its other threads still hold the socket open.
    wait_until(lambda: not listening(broker_url), 10, "the dead hub's port to close")

    second = procs.worker(broker_url, cwd=tasks_module.dir, name="second", env=env)
    assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [0, 2, 4, 6, 8]
    assert wait_for_event(second.log, "hub_started", proc=second)["restored"] >= 5


def test_a_script_without_a_main_guard_runs_a_worker_with_its_hub_process(
    procs: Spawner, broker_url: str, tmp_path: Path, client: App
) -> None:
    """``app.worker_main()`` at a script's top level (no ``if __name__ == "__main__"``): the
    hub's process does not run the script again (multiprocessing's spawn did, and failed)."""
    script = tmp_path / "noguard.py"
    script.write_text(
        textwrap.dedent(
            f"""\
            from celeriac import App
            app = App("noguard", broker={broker_url!r})
            @app.task(name="noguard.add")
            def add(a, b):
                return a + b
            app.worker_main(["--embedded-hub", "always", "-l", "INFO", "--log-format", "json"])
            """
        )
    )
    worker = procs.spawn("noguard", [sys.executable, str(script)], cwd=tmp_path, env=_env(tmp_path))
    hub_pid = _hub_pid(worker)
    assert client.send_task("noguard.add", [2, 3]).get(timeout=RESULT_TIMEOUT) == 5
    assert count_events(worker.log, "hub_started") == 1
    worker.kill9()
    wait_until(lambda: _gone(hub_pid), 10, "the hub's process to die with its worker")


def test_a_sigterm_to_every_process_still_lets_the_warm_shutdown_reach_the_hub(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """systemd's default stop (SIGTERM to every process of the service) or a kill of the
    process group: the hub's process ignores a SIGTERM that is not its worker's, so the task
    running during the warm shutdown still reports to it (its result comes, it runs once);
    the worker then stops its hub."""
    worker = procs.worker(broker_url, cwd=tasks_module.dir, env=_env(tmp_path))
    hub_pid = _hub_pid(worker)
    running = client.send_task("itasks.record", [1.0])
    wait_until(tasks_module.executions, RESULT_TIMEOUT, "the task to start")

    os.kill(hub_pid, signal.SIGTERM)  # first: a group's signal may reach the hub first
    os.kill(worker.pid, signal.SIGTERM)
    assert running.get(timeout=RESULT_TIMEOUT) == worker.pid
    assert worker.wait(START_TIMEOUT) == 0
    wait_until(lambda: _gone(hub_pid), 10, "the hub's process to stop after its worker")
    assert tasks_module.ended() == [running.id]
    assert count_events(worker.log, "hub_sigterm_ignored") == 1


def test_a_hub_process_killed_alone_is_started_again(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """kill -9 of the hub's process: the worker says so, starts another (whose log lines go to
    the worker's log, in its format) and goes on serving."""
    worker = procs.worker(broker_url, cwd=tasks_module.dir, env=_env(tmp_path))
    hub_pid = _hub_pid(worker)
    assert client.send_task("itasks.add", [1, 2]).get(timeout=RESULT_TIMEOUT) == 3

    os.kill(hub_pid, signal.SIGKILL)
    restarted = wait_for_event(worker.log, "embedded_hub_restarted", proc=worker)
    assert restarted["old_pid"] == hub_pid
    assert restarted["pid"] != hub_pid
    exited = next(r for r in read_events(worker.log) if r["event"] == "embedded_hub_exited")
    assert exited["how"] == "signal SIGKILL"
    assert count_events(worker.log, "hub_started") == 2  # the child logs where its worker does

    assert client.send_task("itasks.add", [2, 3]).get(timeout=RESULT_TIMEOUT) == 5
    assert worker.popen.poll() is None


def test_prefork_with_a_hub_process_serves_and_a_kill9_of_the_parent_takes_it_along(
    procs: Spawner, broker_url: str, tmp_path: Path, tasks_module: TaskModule, client: App
) -> None:
    """-P prefork: the parent's embedded hub runs in its own process; the children reach it at
    broker_url, the parent at its local address; kill -9 of the parent ends the hub too."""
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", broker_url]
    argv += ["--log-format", "json", "-l", "INFO", "--embedded-hub", "always"]
    argv += ["-P", "prefork", "-c", "2"]
    node = procs.spawn("node", argv, cwd=tasks_module.dir, env=_env(tmp_path))
    wait_for_event(node.log, "worker_ready", proc=node)
    hub_pid = _hub_pid(node)
    results = [client.send_task("itasks.add", [i, 1]) for i in range(4)]
    assert [r.get(timeout=RESULT_TIMEOUT) for r in results] == [1, 2, 3, 4]
    node.kill9()
    wait_until(lambda: _gone(hub_pid), 10, "the hub's process to die with the prefork parent")


def test_a_hub_process_that_keeps_dying_stops_its_worker_with_the_reason(
    tmp_path: Path,
) -> None:
    """Past the restart policy's intensity the worker is told why (by default it then exits
    with EXIT_HUB_DIED); here the policy allows no restart at all."""
    app = App("t", broker=f"tcp://127.0.0.1:{pick_port()}", environ={})
    app.conf.hub_data_dir = str(tmp_path / "data")
    reasons: list[str] = []
    told = threading.Event()

    def on_death(reason: str) -> None:
        reasons.append(reason)
        told.set()

    hub = HubProcess(app.conf, on_death=on_death, policy=RestartPolicy(intensity=0, period=60))
    hub.start()
    try:
        assert hub.pid is not None
        assert hub.data_dir == (tmp_path / "data").resolve()
        os.kill(hub.pid, signal.SIGKILL)
        assert told.wait(START_TIMEOUT)
        assert "died 1 times" in reasons[0]
        assert "signal SIGKILL" in reasons[0]
    finally:
        hub.stop()


def _answers(url: str, timeout: float) -> bool:
    """Whether a PING from a DEALER without CURVE keys is answered at ``url``."""
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(url)
    try:
        sock.send_multipart(p.encode(p.Ping()))
        return bool(sock.poll(int(timeout * 1000)))
    finally:
        sock.close(0)
        ctx.destroy(linger=0)


def test_with_curve_the_worker_reaches_its_hub_process_and_nobody_else_without_keys(
    tmp_path: Path,
) -> None:
    """The CURVE settings reach the hub's process: a peer without keys is refused at
    broker_url, while the worker's own local address (an ipc path in a directory only this
    user can enter) needs no handshake, as the in-process link did."""
    keys = tmp_path / "keys"
    (keys / "allowed").mkdir(parents=True)
    generate_keys(keys, "hub")
    url = f"tcp://127.0.0.1:{pick_port()}"
    app = App("t", broker=url, environ={})
    app.conf.hub_data_dir = str(tmp_path / "data")
    app.conf.hub_curve_secret_key_file = str(keys / "hub.key_secret")
    app.conf.hub_curve_allowed_keys_dir = str(keys / "allowed")
    hub = HubProcess(app.conf)
    hub.start()
    try:
        local = hub.local_endpoint
        assert local.startswith("ipc://")
        private = Path(local.removeprefix("ipc://")).parent
        assert private.stat().st_mode & 0o777 == 0o700
        assert _answers(local, timeout=RESULT_TIMEOUT)
        assert not _answers(url, timeout=1.0)
    finally:
        hub.stop()
    assert not private.exists()
