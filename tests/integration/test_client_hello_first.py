"""The client's first message is its HELLO, even for a publish made before its I/O thread ran."""

from __future__ import annotations

from typing import Any

import pytest
import zmq

from celeriac import App
from celeriac.transport import protocol as p

pytestmark = pytest.mark.integration


def _receive(router: zmq.Socket[Any]) -> tuple[bytes, p.Message]:
    assert router.poll(10_000), "the client sent nothing within 10 s"
    frames = router.recv_multipart()
    return frames[0], p.decode(frames[1:])


def test_a_publish_made_at_once_reaches_the_hub_after_the_hello() -> None:
    """HELLO (with the declarations the hub routes by) comes before a publish made right
    after the App was created; the publish is confirmed by this fake hub so close is quick."""
    ctx: zmq.Context[Any] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind("tcp://127.0.0.1:*")
    url = router.getsockopt(zmq.LAST_ENDPOINT).decode()
    app = App("client", broker=url, environ={})
    try:
        app.send_task("itasks.add", [1, 2])
        (_, first), (identity, second) = _receive(router), _receive(router)
        assert isinstance(first, p.Hello)
        assert isinstance(second, p.Publish)
        router.send_multipart([identity, *p.encode(p.Confirm((second.tasks[0].id,)))])
    finally:
        app.close()
        router.close()
        ctx.term()
