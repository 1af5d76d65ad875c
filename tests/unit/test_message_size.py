"""broker_max_message_size: refused by the client before sending, and by the hub with a NACK."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import zmq

from celeriac import App
from celeriac._clock import FakeClock
from celeriac.exceptions import ImproperlyConfigured, PublishError
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.sockets import configure_router, max_frame_size
from celeriac.transport.store_memory import MemoryStore

C = b"client"


def test_the_hub_nacks_a_body_over_the_limit_and_stores_nothing() -> None:
    """A PUB whose body exceeds max_message_size gets a NACK naming the setting."""
    hub = HubState(MemoryStore(), FakeClock(), hub_id="h")
    hub.max_message_size = 1024
    hub.handle(C, p.encode(p.Hello("client", "c", declare=p.Declare(queues=(p.QueueDecl("q"),)))))
    hub.outbox.clear()
    big = p.TaskMessage("big", "t", b"x" * 1025, queue="q")
    ok = p.TaskMessage("ok", "t", b"x" * 1024, queue="q")
    hub.handle(C, p.encode(p.Publish((big, ok))))
    hub.tick()
    out = [p.decode(f[1:]) for f in hub.outbox]
    refusals = [r for m in out if isinstance(m, p.Nack) for r in m.refusals]
    assert [r.id for r in refusals] == ["big"]
    assert "broker_max_message_size" in refusals[0].reason
    assert [i for m in out if isinstance(m, p.Confirm) for i in m.ids] == ["ok"]
    assert hub.statistics()["messages"] == 1


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_client_refuses_a_body_over_the_limit_before_sending() -> None:
    """send_task with arguments over broker_max_message_size raises PublishError at once."""
    app = App("big", broker=f"tcp://127.0.0.1:{_unused_port()}", environ={})
    app.conf.broker_max_message_size = 2048
    app.conf.worker_embedded_hub = "never"
    try:
        with pytest.raises(PublishError, match="broker_max_message_size"):
            app.send_task("t", ["x" * 4096])
    finally:
        app.close()


def test_the_setting_is_checked() -> None:
    """A size below 1 KiB or not an integer is a configuration error."""
    app = App("bad", environ={})
    with pytest.raises(ImproperlyConfigured, match="broker_max_message_size"):
        app.conf.broker_max_message_size = 10
    with pytest.raises(ImproperlyConfigured, match="broker_max_message_size"):
        app.conf.broker_max_message_size = "big"


def test_the_router_socket_carries_maxmsgsize() -> None:
    """The hub's ROUTER drops frames above the setting plus slack (zmq.MAXMSGSIZE)."""
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    try:
        configure_router(sock, "tcp://127.0.0.1:1", max_message_size=4096)
        assert sock.getsockopt(zmq.MAXMSGSIZE) == max_frame_size(4096)
        assert sock.getsockopt(zmq.LINGER) == 0
    finally:
        sock.close(0)
        ctx.term()


def test_a_result_over_the_limit_is_stored_as_a_failure_that_says_why() -> None:
    """A DONE whose body exceeds max_message_size acks the task and stores FAILURE instead."""
    hub = HubState(MemoryStore(), FakeClock(), hub_id="h")
    hub.max_message_size = 1024
    hub.handle(C, p.encode(p.Hello("client", "c", declare=p.Declare(queues=(p.QueueDecl("q"),)))))
    hub.handle(b"w", p.encode(p.Hello("worker", "w", queues=("q",), credit=1)))
    hub.handle(C, p.encode(p.Publish((p.TaskMessage("r", "t", b"[]", queue="q"),))))
    big = p.ResultMessage("r", "SUCCESS", b"x" * 2048, "application/json", store=True, credit=1)
    hub.handle(b"w", p.encode(p.Done((big,))))
    stored = hub.store.get_result("r")
    assert stored is not None
    assert stored.state == "FAILURE"
    assert b"broker_max_message_size" in stored.body
    assert hub.counters["acked"] == 1
