"""broker_max_message_size on the peers' side: their sockets carry zmq.MAXMSGSIZE, and a
result too large to send is a FAILURE that says so (the worker goes on), instead of a frame the
hub's socket drops with the connection, again and again."""

from __future__ import annotations

from typing import Any

import pytest
import zmq

from celeriac import App
from celeriac.runtime.link import dealer
from celeriac.testing import TestWorker
from celeriac.transport.sockets import max_frame_size

pytestmark = pytest.mark.integration

TIMEOUT = 30.0
LIMIT = 64 * 1024


@pytest.fixture
def celeriac_config() -> dict[str, Any]:
    return {"broker_max_message_size": LIMIT}


def test_peer_sockets_carry_maxmsgsize() -> None:
    """The DEALER of clients and workers: MAXMSGSIZE is the setting plus the hub's slack."""
    ctx: zmq.Context[Any] = zmq.Context()
    sock = dealer(ctx, "tcp://127.0.0.1:1", b"me", max_message_size=LIMIT)
    try:
        assert sock.getsockopt(zmq.MAXMSGSIZE) == max_frame_size(LIMIT)
    finally:
        sock.close(0)
        ctx.term()


def test_a_result_over_the_limit_fails_its_task_and_the_worker_goes_on(
    celeriac_app: App, celeriac_worker: TestWorker
) -> None:
    """A task returning 3 MB (far over 64 KiB plus slack): get() raises ResultTooLarge naming
    the setting; the next task runs and returns as usual."""

    @celeriac_app.task
    def huge() -> str:
        return "x" * (3 * 1024 * 1024)

    @celeriac_app.task
    def small() -> int:
        return 7

    with pytest.raises(Exception, match="broker_max_message_size") as info:
        huge.delay().get(timeout=TIMEOUT)
    assert getattr(info.value, "exc_type", None) == "ResultTooLarge"
    assert small.delay().get(timeout=TIMEOUT) == 7
    celeriac_worker.join(TIMEOUT)
