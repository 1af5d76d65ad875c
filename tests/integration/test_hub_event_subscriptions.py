"""A real hub builds events only while someone subscribes to its events socket (an XPUB whose
subscriptions the loop follows): none before the first subscriber, every one while it listens,
none again after it left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zmq

from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer

from .conftest import wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 30.0  # generous: a busy 2-core machine


def _hello(ctx: zmq.Context[Any], hub: HubServer, node: str) -> zmq.Socket[bytes]:
    worker: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
    worker.connect(hub.endpoint)
    worker.send_multipart(p.encode(p.Hello("worker", node, queues=("q",), credit=1)))
    return worker


def test_events_are_built_only_while_someone_subscribes(tmp_path: Path) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    hub = HubServer("tcp://127.0.0.1:*", tmp_path / "data", context=ctx, events="tcp://127.0.0.1:*")
    hub.start()
    sockets: list[zmq.Socket[bytes]] = []
    try:
        assert hub.events_endpoint is not None
        assert hub.state.events_wanted is False  # nobody listens yet
        # A worker joining now is no event: nothing was built (and nothing is waiting).
        sockets.append(_hello(ctx, hub, "early"))
        wait_until(lambda: hub.statistics()["peers"].get("early"), TIMEOUT, "the early HELLO")
        assert hub.state.events == []

        sub: zmq.Socket[bytes] = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"worker-")
        sub.connect(hub.events_endpoint)
        wait_until(lambda: hub.state.events_wanted, TIMEOUT, "the hub to see the subscription")
        sockets.append(_hello(ctx, hub, "late"))
        assert sub.poll(int(TIMEOUT * 1000)), "no event for the late worker"
        topic, header = sub.recv_multipart()
        assert topic == b"worker-online"
        assert b"late" in header

        sub.close(0)  # the last subscriber leaves: the hub stops building events
        wait_until(lambda: not hub.state.events_wanted, TIMEOUT, "the hub to see it leave")
    finally:
        for sock in sockets:
            sock.close(0)
        hub.stop()
        ctx.term()
