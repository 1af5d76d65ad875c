"""When a worker runs the hub itself, decided by ``worker_embedded_hub``, not by a failed bind."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from celeriac import App

from .conftest import (
    RESULT_TIMEOUT,
    START_TIMEOUT,
    Spawner,
    TaskModule,
    clean_env,
    count_events,
    pick_port,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration


def _refused(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


def _assert_round_trip(url: str) -> None:
    client = App("client", broker=url, environ={})
    try:
        assert client.send_task("itasks.add", [2, 3]).get(timeout=RESULT_TIMEOUT) == 5
    finally:
        client.close()


@pytest.mark.parametrize("how", ["never", "auto", "environment", "prefork"])
def test_a_worker_given_an_address_waits_for_its_hub_without_binding(
    procs: Spawner, free_port: int, tasks_module: TaskModule, tmp_path: Path, how: str
) -> None:
    """Issue 16 (no accidental hubs): a worker given a loopback address nobody listens on
    (``--broker``, or ``CELERIAC_BROKER_URL``; ``auto`` or ``never``; threads or prefork) says
    it waits, at growing intervals, never takes the port, and serves once a hub starts there."""
    url = f"tcp://127.0.0.1:{free_port}"
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker"]
    argv += ["--log-format", "json", "-l", "INFO"]
    env = clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "would-be-embedded"))
    if how == "environment":
        env["CELERIAC_BROKER_URL"] = url
    else:
        argv += ["--broker", url]
    if how == "never":
        argv += ["--embedded-hub", "never"]
    if how == "prefork":
        argv += ["-P", "prefork", "-c", "1"]
    worker = procs.spawn(how, argv, cwd=tasks_module.dir, env=env)
    waiting = wait_for_event(worker.log, "waiting_for_hub", proc=worker)
    assert waiting["endpoint"] == url
    assert _refused(free_port)
    if how == "auto":  # the second line comes 4 s after the first (2, 4, 8, 16, then 30 s)
        wait_until(
            lambda: count_events(worker.log, "waiting_for_hub") >= 2,
            RESULT_TIMEOUT,
            "a second waiting_for_hub",
            proc=worker,
        )
        assert _refused(free_port)
    assert count_events(worker.log, "embedded_hub_started") == 0
    assert not (tmp_path / "would-be-embedded").exists()
    procs.hub(url, tmp_path / "hub-data")
    wait_for_event(worker.log, "worker_ready", timeout=RESULT_TIMEOUT, proc=worker)
    _assert_round_trip(url)
    assert count_events(worker.log, "embedded_hub_started") == 0


def test_always_refuses_a_taken_address_with_the_reason(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, tmp_path: Path
) -> None:
    """--embedded-hub always where a hub already listens: exit 1 with a message, no traceback."""
    procs.hub(broker_url, tmp_path / "hub-data")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "celeriac",
            "-A",
            "itasks",
            "worker",
            "--broker",
            broker_url,
            "--embedded-hub",
            "always",
        ],
        cwd=tasks_module.dir,
        env=clean_env(CELERIAC_HUB_DATA_DIR=str(tmp_path / "other")),
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert f"cannot listen at {broker_url}: the address is in use" in done.stderr
    assert "--embedded-hub never" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_hub_cannot_bind_an_address_of_another_machine(tmp_path: Path) -> None:
    """`celeriac hub --bind` on an address this machine does not have says so, no traceback."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "celeriac",
            "hub",
            "--bind",
            "tcp://192.0.2.1:5555",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2  # issue 16: a hub that cannot bind exits 2
    assert "cannot listen at tcp://192.0.2.1:5555: that address is not one of this machine's" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("host", ["localhost", "[::1]"])
def test_loopback_names_and_ipv6_get_the_embedded_hub(
    procs: Spawner, free_port: int, tasks_module: TaskModule, host: str
) -> None:
    """A worker that is its own hub (``--embedded-hub always``, as the test helper passes on a
    free address) binds tcp://localhost:PORT and tcp://[::1]:PORT too."""
    if host == "[::1]" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    url = f"tcp://{host}:{free_port}"
    worker = procs.worker(url, cwd=tasks_module.dir)
    started = wait_for_event(worker.log, "embedded_hub_started", timeout=1)
    assert started["endpoint"] == url
    _assert_round_trip(url)


def test_a_second_hub_on_the_same_data_dir_is_refused(procs: Spawner, tmp_path: Path) -> None:
    """`celeriac hub` on a data directory another hub holds exits 2, saying so; the first serves."""
    data = tmp_path / "shared-data"
    first_url = f"tcp://127.0.0.1:{pick_port()}"
    first = procs.hub(first_url, data, name="first")
    second_url = f"tcp://127.0.0.1:{pick_port()}"
    argv = [sys.executable, "-m", "celeriac", "hub", "--bind", second_url]
    argv += ["--data-dir", str(data), "--log-format", "json"]
    second = procs.spawn("second", argv, cwd=tmp_path, env=clean_env())
    try:
        code = second.wait(START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("a second hub started on a data directory already in use")
    assert code == 2  # celeriac hub exits 2 when it cannot start (see test_hub_start_errors)
    output = second.log.read_text() + second.log.with_suffix(".out").read_text()
    assert "another hub is already using the data directory" in output
    assert _refused(int(second_url.rsplit(":", 1)[1]))
    assert first.popen.poll() is None
    assert count_events(first.log, "hub_started") == 1


def test_hub_serves_without_events_when_the_events_port_is_taken(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, tmp_path: Path
) -> None:
    """With broker port + 1 taken, the hub logs events_disabled and still routes tasks."""
    port = int(broker_url.rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port + 1))
        squatter.listen()
        hub = procs.hub(broker_url, tmp_path / "hub-data")
        disabled = wait_for_event(hub.log, "events_disabled", proc=hub)
        assert disabled["endpoint"] == f"tcp://127.0.0.1:{port + 1}"
        started = wait_for_event(hub.log, "hub_started", proc=hub)
        assert started["events"] is None
        procs.worker(broker_url, cwd=tasks_module.dir)
        _assert_round_trip(broker_url)
        assert hub.popen.poll() is None
