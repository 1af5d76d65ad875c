"""No silent waits: a client says when its hub is not there, and why a result has not come."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from celeriac import App, states
from celeriac.exceptions import TimeoutError
from celeriac.testing import start_hub

from .conftest import (
    RESULT_TIMEOUT,
    Proc,
    Spawner,
    TaskModule,
    clean_env,
    count_events,
    embed_if_free,
    wait_for_event,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_a_client_without_hub_says_so_and_never_blocks_on_state(free_port: int) -> None:
    """No hub: one hub_not_answering warning, get(timeout=2) says "never confirmed", and
    state answers PENDING without waiting for a hub."""
    app = App(
        "lonely",
        broker=f"tcp://127.0.0.1:{free_port}",
        environ={},
        broker_heartbeat=0.2,
        broker_connection_timeout=0.5,
    )
    try:
        with capture_logs() as logs:
            result = app.send_task("t.add", [1, 2])
            wait_until(
                lambda: any(e["event"] == "hub_not_answering" for e in logs),
                RESULT_TIMEOUT,
                "the hub_not_answering warning",
            )
            started = time.monotonic()
            assert result.state == states.PENDING
            assert time.monotonic() - started < 0.9
            with pytest.raises(TimeoutError, match="never confirmed it"):
                result.get(timeout=2)
        warning = next(e for e in logs if e["event"] == "hub_not_answering")
        assert warning["held"] == 1
        assert sum(e["event"] == "hub_not_answering" for e in logs) == 1
    finally:
        with capture_logs() as closing:
            app.close()
    lost = [e for e in closing if e["event"] == "publishes_lost"]
    assert lost
    assert lost[0]["count"] == 1


def test_a_queue_nobody_consumes_is_named_in_the_timeout(tmp_path: Path) -> None:
    """A task queued where no worker listens: get()'s timeout says which queue and why."""
    app = App("t", environ={})
    with start_hub(app, tmp_path):
        try:
            result = app.send_task("t.add", [1, 2], queue="nobody-listens")
            app.flush(RESULT_TIMEOUT)
            with pytest.raises(TimeoutError, match="no worker consumes 'nobody-listens'"):
                result.get(timeout=1)
        finally:
            app.close()


def test_losing_the_embedded_hub_is_one_warning_and_its_return_one_line(
    procs: Spawner, broker_url: str, tasks_module: TaskModule
) -> None:
    """Stop the worker that holds the embedded hub: the other worker says hub_lost once (not a
    flood); when it is back, hub_back and hub_reconnected once each, and the hub sees it join
    once."""
    env = clean_env(CELERIAC_BROKER_HEARTBEAT="0.3")

    def worker(name: str) -> Proc:
        argv = [sys.executable, "-m", "celeriac", "-A", "itasks", "worker", "-b", broker_url]
        argv += embed_if_free(broker_url)  # the holder is the hub; the other waits for it
        argv += ["-n", f"{name}@test", "--log-format", "json", "-l", "INFO"]
        proc = procs.spawn(name, argv, cwd=tasks_module.dir, env=env)
        wait_for_event(proc.log, "worker_ready", proc=proc)
        return proc

    holder = worker("holder")
    wait_for_event(holder.log, "embedded_hub_started", timeout=1)
    other = worker("other")
    os.kill(holder.pid, signal.SIGTERM)
    assert holder.wait(RESULT_TIMEOUT) == 0
    wait_for_event(other.log, "hub_lost", timeout=RESULT_TIMEOUT, proc=other)
    # By now three heartbeats or more are queued for the absent hub (the old flood's cause).
    again = worker("holder")
    wait_for_event(other.log, "hub_back", timeout=RESULT_TIMEOUT, proc=other)
    wait_for_event(other.log, "hub_reconnected", timeout=RESULT_TIMEOUT, proc=other)
    app = App("client", broker=broker_url, environ={})
    try:  # a round trip: everything settled
        assert app.send_task("itasks.add", [2, 2]).get(timeout=RESULT_TIMEOUT) == 4
    finally:
        app.close()
    assert count_events(other.log, "hub_lost") == 1
    assert count_events(other.log, "hub_back") == 1
    assert count_events(other.log, "hub_reconnected") == 1
    joins = [
        line
        for line in again.log.read_text().splitlines()
        if '"peer_joined"' in line and '"node": "other@test"' in line
    ]
    assert len(joins) == 1, joins
