"""Where a worker's embedded hub runs: ``worker_embedded_hub_process`` (auto, True, False)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import zmq
from structlog.testing import capture_logs

from celeriac import App
from celeriac.exceptions import ImproperlyConfigured
from celeriac.runtime import embedded
from celeriac.runtime.embedded import hub_in_process
from celeriac.transport.hubserver import HubServer


@pytest.mark.parametrize(
    ("value", "stored"),
    [("auto", "auto"), (" AUTO ", "auto"), (True, True), (False, False), ("yes", True)],
)
def test_the_setting_takes_auto_and_booleans(value: object, stored: object) -> None:
    """auto, True, False, or a boolean word."""
    app = App("t", environ={})
    app.conf.worker_embedded_hub_process = value
    assert app.conf.worker_embedded_hub_process == stored


def test_the_default_is_auto_and_the_environment_may_say_otherwise() -> None:
    """auto unless CELERIAC_WORKER_EMBEDDED_HUB_PROCESS says true or false."""
    assert App("t", environ={}).conf.worker_embedded_hub_process == "auto"
    for text, stored in (("true", True), ("0", False), ("auto", "auto")):
        app = App("t", environ={"CELERIAC_WORKER_EMBEDDED_HUB_PROCESS": text})
        assert app.conf.worker_embedded_hub_process == stored


def test_other_values_are_refused() -> None:
    """Anything else is an error that names the choices."""
    with pytest.raises(ImproperlyConfigured, match="auto, True or False"):
        App("t", environ={}).conf.worker_embedded_hub_process = "sometimes"


@pytest.mark.parametrize(
    ("cpus", "tasks_here", "process"),
    [(2, True, True), (8, True, True), (1, True, False), (2, False, False)],
)
def test_auto_takes_a_process_for_a_worker_running_its_tasks_on_two_cpus(
    monkeypatch: pytest.MonkeyPatch, cpus: int, tasks_here: bool, process: bool
) -> None:
    """auto: a process where the worker runs its tasks itself and has 2 CPUs or more; a
    prefork parent (no tasks here) or a single CPU keeps the thread."""
    monkeypatch.setattr(embedded, "_usable_cpus", lambda: cpus)
    conf = App("t", environ={}).conf.freeze()
    assert hub_in_process(conf, tasks_here=tasks_here) is process


def test_auto_keeps_the_thread_where_no_interpreter_can_be_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frozen program, or one without sys.executable, cannot start the hub's child."""
    monkeypatch.setattr(embedded, "_usable_cpus", lambda: 4)
    conf = App("t", environ={}).conf.freeze()
    monkeypatch.setattr(embedded.sys, "frozen", True, raising=False)
    assert hub_in_process(conf, tasks_here=True) is False
    monkeypatch.delattr(embedded.sys, "frozen")
    monkeypatch.setattr(embedded.sys, "executable", "")
    assert hub_in_process(conf, tasks_here=True) is False


@pytest.mark.parametrize("value", [True, False])
def test_true_or_false_is_obeyed_whatever_the_machine(
    monkeypatch: pytest.MonkeyPatch, value: bool
) -> None:
    """A setting given explicitly wins over the CPU count and the pool."""
    monkeypatch.setattr(embedded, "_usable_cpus", lambda: 1)
    app = App("t", environ={})
    app.conf.worker_embedded_hub_process = value
    conf = app.conf.freeze()
    assert hub_in_process(conf, tasks_here=True) is value
    assert hub_in_process(conf, tasks_here=False) is value


def test_a_hub_thread_that_does_not_stop_leaves_the_context_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread hub still running its grace after stop (here: its loop held at its turn lock)
    makes stop() say False and log embedded_hub_thread_stuck, so the worker leaves the shared
    context alone (closing a socket under another thread is undefined); a hub that stops in
    time says True."""
    monkeypatch.setattr(embedded, "STOP_GRACE", 0.3)
    for held in (True, False):
        ctx: zmq.Context[Any] = zmq.Context()
        server = HubServer.from_settings(
            App("t", environ={}).conf,
            bind="tcp://127.0.0.1:*",
            data_dir=tmp_path / str(held),
            context=ctx,
        )
        server.start()
        hub = embedded.EmbeddedHub(server, server.endpoint, os.getpid())
        try:
            if held:
                server._turn.acquire()  # the loop blocks at its next turn
            with capture_logs() as logs:
                assert hub.stop() == (not held)
            assert [e["event"] for e in logs].count("embedded_hub_thread_stuck") == held
        finally:
            if held:
                server._turn.release()
            server.stop(timeout=10)
            assert not server.thread_alive()
            ctx.destroy(linger=0)
