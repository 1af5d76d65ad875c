"""What an operator sees in the first hour: the banner, where data lives, logs that stay JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from celeriac import App

from .conftest import (
    RESULT_TIMEOUT,
    Spawner,
    TaskModule,
    clean_env,
    embed_if_free,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration


def _worker(url: str, *extra: str, fmt: str = "json") -> list[str]:
    """The argv of ``celeriac -A itasks worker`` at ``url``."""
    argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "--broker", url]
    argv += embed_if_free(url)  # given --broker, auto would wait for a hub
    return [*argv, "--log-format", fmt, *extra]


def test_banner_lists_the_tasks_and_the_absolute_data_dir(
    procs: Spawner, broker_url: str, tasks_module: TaskModule
) -> None:
    """The console banner names the app, the embedded hub's absolute data dir and every task."""
    argv = _worker(broker_url, "-l", "INFO", fmt="console")
    worker = procs.spawn("worker", argv, cwd=tasks_module.dir, env=clean_env())
    text = wait_for_event_text(worker.log, "[tasks]")
    state_home = Path(os.environ["XDG_STATE_HOME"])
    port = broker_url.rsplit(":", 1)[1]
    assert f"data in {state_home}/celeriac/hub-127.0.0.1-{port}" in text
    assert ".> app:         itasks" in text
    for name in ("itasks.add", "itasks.fail", "itasks.record"):
        assert f"  . {name}" in text


def wait_for_event_text(log: Path, needle: str) -> str:
    """Wait until ``needle`` shows in the process's stderr (a console log); all of it."""
    return wait_until(  # type: ignore[no-any-return]
        lambda: (text := log.read_text(errors="replace")) and needle in text and text,
        30.0,
        f"{needle!r} in {log.name}",
    )


def test_quiet_has_no_banner_and_json_banner_is_one_record(
    procs: Spawner, broker_url: str, free_port: int, tasks_module: TaskModule
) -> None:
    """--log-format json prints the banner as one worker_banner record; --quiet prints none."""
    loud = procs.spawn("loud", _worker(broker_url), cwd=tasks_module.dir, env=clean_env())
    banner = wait_for_event(loud.log, "worker_banner", proc=loud)
    assert "itasks.add" in banner["tasks"]
    assert banner["hub"].startswith("embedded")
    quiet_url = f"tcp://127.0.0.1:{free_port}"
    quiet = procs.spawn(
        "quiet",
        _worker(quiet_url, "-q"),
        cwd=tasks_module.dir,
        env=clean_env(),
    )
    wait_for_event(quiet.log, "worker_ready", proc=quiet)
    assert "worker_banner" not in quiet.log.read_text()


def test_the_embedded_store_is_the_same_from_any_directory(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, tmp_path: Path
) -> None:
    """A task queued while the worker ran in one directory runs after it restarts in another."""
    first = procs.spawn(
        "first",
        _worker(broker_url, "-Q", "elsewhere"),
        cwd=tasks_module.dir,
        env=clean_env(),
    )
    wait_for_event(first.log, "worker_ready", proc=first)
    client = App("client", broker=broker_url, environ={})
    try:
        result = client.send_task("itasks.add", [20, 22])
        client.flush(timeout=RESULT_TIMEOUT)
        os.kill(first.pid, signal.SIGTERM)
        assert first.wait(RESULT_TIMEOUT) == 0
        other_dir = tmp_path / "somewhere-else"
        other_dir.mkdir()
        second = procs.spawn(
            "second",
            _worker(broker_url),
            cwd=other_dir,
            env=clean_env(PYTHONPATH=str(tasks_module.dir)),
        )
        started = wait_for_event(second.log, "hub_started", proc=second)
        assert started["restored"] >= 1
        assert result.get(timeout=RESULT_TIMEOUT) == 42
    finally:
        client.close()


def test_json_logs_stay_json_at_debug(
    procs: Spawner, broker_url: str, tasks_module: TaskModule
) -> None:
    """With --log-format json -l DEBUG every line on stderr is a JSON object (pykka's too)."""
    argv = _worker(broker_url, "-l", "DEBUG")
    worker = procs.spawn("worker", argv, cwd=tasks_module.dir, env=clean_env())
    wait_for_event(worker.log, "worker_ready", proc=worker)
    client = App("client", broker=broker_url, environ={})
    try:
        assert client.send_task("itasks.add", [1, 2]).get(timeout=RESULT_TIMEOUT) == 3
        with pytest.raises(ValueError, match="boom"):
            client.send_task("itasks.fail", ["boom"]).get(timeout=RESULT_TIMEOUT)
    finally:
        client.close()
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(RESULT_TIMEOUT) == 0
    lines = [line for line in worker.log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails the test on any plain-text line
    assert "pykka" in {r.get("logger") for r in records}, "pykka's DEBUG lines, as JSON"
    by_event = {r["event"]: r for r in records if "event" in r}
    assert by_event["task_received"]["task"] in {"itasks.add", "itasks.fail"}
    assert by_event["task_succeeded"]["task"] == "itasks.add"
    assert by_event["task_succeeded"]["runtime"] >= 0
    failed = by_event["task_failed"]
    assert failed["level"] == "error"
    assert "Traceback (most recent call last)" in failed["exception"]
    assert "ValueError: boom" in failed["exception"]


def test_call_wait_prints_a_failed_task_as_one_line(
    procs: Spawner, broker_url: str, tasks_module: TaskModule
) -> None:
    """`celeriac call --wait` of a failing task: exit 1 and one line; -v adds the traceback."""
    procs.worker(broker_url, cwd=tasks_module.dir)
    argv = [sys.executable, "-m", "celeriac", "call", "itasks.fail", "--args", '["bad input"]']
    argv += ["--wait", "-b", broker_url]
    plain = subprocess.run(
        argv,
        cwd=tasks_module.dir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT * 2,
        check=False,
    )
    assert plain.returncode == 1
    errors = [line for line in plain.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, plain.stderr
    assert errors[0].startswith("Error: task ")
    assert errors[0].endswith("failed: ValueError: bad input")
    verbose = subprocess.run(
        [*argv, "-v"],
        cwd=tasks_module.dir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT * 2,
        check=False,
    )
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "raise ValueError(message)" in verbose.stderr


def _call(url: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "celeriac", "call", *extra, "-b", url]
    return subprocess.run(
        argv,
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT * 2,
        check=False,
    )


def test_call_sends_by_name_and_prints_the_id_or_the_result(
    procs: Spawner, broker_url: str, tasks_module: TaskModule, client: App
) -> None:
    """`celeriac call NAME --args --kwargs`: the id (the task runs), or with --wait the result."""
    procs.worker(broker_url, cwd=tasks_module.dir)
    waited = _call(
        broker_url, tasks_module.dir, "itasks.add", "-a", "[2]", "-k", '{"y": 3}', "--wait"
    )
    assert (waited.returncode, waited.stdout.strip()) == (0, "5"), waited.stderr
    sent = _call(broker_url, tasks_module.dir, "itasks.add", "--args", "[4, 4]")
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.strip()
    assert len(task_id) >= 32
    assert client.AsyncResult(task_id).get(timeout=RESULT_TIMEOUT) == 8
