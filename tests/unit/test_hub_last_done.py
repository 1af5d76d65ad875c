"""A worker that sends its last ``DONE`` and closes at once: the hub handles the ``DONE``
before it acts on the closed connection (transport/hubserver.py, ``_lose_peers``), so the task
is done, not requeued for the worker's loss with its result dropped (a rare failure of
test_client_leader under load found it: the monitor's turn probed the peers before reading the
router)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer
from celeriac.transport.hubwait import MONITOR

JSON = "application/json"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HubServer]:
    """A hub driven turn by turn from the test's thread (never started)."""
    ctx: zmq.Context[Any] = zmq.Context()
    hub = HubServer("tcp://127.0.0.1:*", tmp_path / "data", context=ctx, events=None)
    yield hub
    hub._close()
    ctx.destroy(linger=0)


def _turn_until(hub: HubServer, sock: zmq.Socket[Any], kind: type) -> Any:
    for _ in range(200):  # bounded: each turn waits at most its own timeout
        hub._wait_and_turn()
        while sock.poll(0):
            message = p.decode(sock.recv_multipart())
            if isinstance(message, kind):
                return message
    raise AssertionError(f"no {kind.__name__} came")


def test_a_done_sent_just_before_the_close_is_handled_before_the_loss(
    server: HubServer, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = zmq.Context.instance()
    client = ctx.socket(zmq.DEALER)
    worker = ctx.socket(zmq.DEALER)
    try:
        for sock in (client, worker):
            sock.connect(server.endpoint)
        declare = p.Declare(queues=(p.QueueDecl("celery"),))
        client.send_multipart(p.encode(p.Hello("client", "c", declare=declare)))
        worker.send_multipart(p.encode(p.Hello("worker", "w", queues=("celery",), credit=1)))
        task = p.TaskMessage("t1", "add", queue="celery")
        client.send_multipart(p.encode(p.Publish((task,))))
        _turn_until(server, worker, p.Deliver)
        worker.send_multipart(p.encode(p.Done((p.ResultMessage("t1", "SUCCESS", b"2", JSON),))))
        worker.close(linger=2_000)
        assert server._router.poll(5_000), "the DONE did not reach the hub"
        assert server._monitor.poll(5_000), "the close was not seen"
        server._ready = False  # the turn a wait woken by the monitor alone runs
        server._one_turn(MONITOR)
        for _ in range(3):  # the probe's ping finds the worker gone: lost next turn
            server._one_turn(0)
        assert "t1" not in server.state._messages, "the task was requeued, its result dropped"
        assert "requeued=1" not in caplog.text
    finally:
        client.close(0)
        worker.close(0)
