"""A result pushed before anyone waited, then evicted from the client's buffer, is asked again."""

from __future__ import annotations

from typing import Any

import pytest
import zmq

from celeriac import App
from celeriac.runtime import client_waits
from celeriac.transport import protocol as p
from celeriac.transport.hubserver import HubServer
from celeriac.transport.session import client as session_client

JSON = "application/json"


def run_tasks(url: str, count: int) -> None:
    """A bare worker: take ``count`` deliveries and answer each with its id as the result."""
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(url)
    try:
        sock.send_multipart(p.encode(p.Hello("worker", "w", queues=("celery",), credit=count)))
        done = 0
        while done < count:
            assert sock.poll(10_000), "no delivery within 10 s"
            message = p.decode(sock.recv_multipart())
            if not isinstance(message, p.Deliver):
                continue
            for delivery in message.deliveries:
                tid = delivery.task.id
                body = f'"{tid}"'.encode()
                result = p.ResultMessage(tid, "SUCCESS", body, JSON, store=True, credit=1)
                sock.send_multipart(p.encode(p.Done((result,))))
                done += 1
    finally:
        sock.close(0)
        ctx.destroy(linger=0)


def test_an_evicted_early_result_is_fetched_from_the_hub(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for 2 early results, the first of 5 is evicted, and get() still returns it."""
    monkeypatch.setattr(session_client, "UNCLAIMED_LIMIT", 2)
    app = App("early", broker=hub_server.endpoint, environ={})
    app.conf.worker_embedded_hub = "never"
    try:
        results = [app.send_task("t", [i]) for i in range(5)]
        app.flush(timeout=10.0)
        run_tasks(hub_server.endpoint, 5)
        assert results[4].get(timeout=10.0) == results[4].id  # all five have arrived by now
        assert [r.get(timeout=10.0) for r in results] == [r.id for r in results]
    finally:
        app.close()


def test_the_client_keeps_a_bounded_number_of_fetched_results(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for 2 fetched results, the client holds no more than 2 of 6 after their
    get(); a get() of an older one asks the hub again and returns the same value."""
    monkeypatch.setattr(client_waits, "ARRIVED_LIMIT", 2)
    app = App("bounded", broker=hub_server.endpoint, environ={})
    app.conf.worker_embedded_hub = "never"
    try:
        results = [app.send_task("t", [i]) for i in range(6)]
        app.flush(timeout=10.0)
        run_tasks(hub_server.endpoint, 6)
        assert [r.get(timeout=10.0) for r in results] == [r.id for r in results]
        client = app._client()
        filled = [tid for tid, slot in client._slots.items() if slot.outcome is not None]
        assert filled == [r.id for r in results[-2:]]
        assert len(client._arrived) == 2
        assert results[0].get(timeout=10.0) == results[0].id  # asked again (WAIT)
    finally:
        app.close()
