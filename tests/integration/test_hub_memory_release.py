"""A real hub server drained of 20,000 tasks rebuilds its per-message tables once idle (a
Python dict keeps its peak size otherwise), and still drops a duplicate of a task done."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import zmq

from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer

from .conftest import wait_until

pytestmark = pytest.mark.integration

N = 20_000
TIMEOUT = 120.0  # generous: a busy 2-core machine


def _recv(sock: zmq.Socket[bytes]) -> p.Message:
    if not sock.poll(int(TIMEOUT * 1000)):
        pytest.fail("the hub did not answer")
    return p.decode(sock.recv_multipart())


def _publish(sock: zmq.Socket[bytes], ids: list[str]) -> int:
    """Publish ``ids`` 500 at a time, each batch confirmed; how many were confirmed."""
    confirmed = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        tasks = tuple(p.TaskMessage(mid, "t", b"x" * 256, queue="q") for mid in chunk)
        sock.send_multipart(p.encode(p.Publish(tasks)))
        got = 0
        while got < len(chunk):  # a batch may be confirmed in several CONF
            reply = _recv(sock)
            assert isinstance(reply, p.Confirm), reply
            got += len(reply.ids)
        confirmed += got
    return confirmed


def _drain(sock: zmq.Socket[bytes], count: int) -> None:
    done = 0
    while done < count:
        message = _recv(sock)
        if isinstance(message, p.Ping):
            sock.send_multipart(p.encode(p.Pong()))
        elif isinstance(message, p.Deliver):
            acks = tuple(
                p.ResultMessage(d.task.id, "SUCCESS", store=False, credit=1)
                for d in message.deliveries
            )
            sock.send_multipart(p.encode(p.Done(acks)))
            done += len(acks)


def test_a_drained_hub_shrinks_its_tables_and_still_drops_duplicates(tmp_path: Path) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    hub = HubServer("tcp://127.0.0.1:*", tmp_path / "data", context=ctx, events=None)
    hub.start()
    client, worker = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
    try:
        client.connect(hub.endpoint)
        client.send_multipart(p.encode(p.Declare(queues=(p.QueueDecl("q"),))))
        ids = [str(uuid.uuid4()) for _ in range(N)]
        assert _publish(client, ids) == N
        worker.connect(hub.endpoint)
        worker.send_multipart(p.encode(p.Hello("worker", "w", queues=("q",), credit=1000)))
        _drain(worker, N)

        def tables() -> int:
            state = hub.state
            return sys.getsizeof(state._messages) + sys.getsizeof(state._body_window)

        # Sized for 20,000 entries (over 1 MB) until the hub idles; then rebuilt empty.
        wait_until(lambda: tables() < 100_000, TIMEOUT, "the hub's tables to shrink")
        assert hub.statistics()["acked"] == N
        before = hub.statistics()["duplicates"]
        assert _publish(client, ids[-500:]) == 500  # confirmed again, not queued again
        assert hub.statistics()["duplicates"] - before == 500
    finally:
        client.close(linger=0)
        worker.close(linger=0)
        hub.stop()
        ctx.destroy(linger=0)
