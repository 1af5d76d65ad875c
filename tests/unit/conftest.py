"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from celeriac.transport.hubserver import HubServer


@pytest.fixture
def hub_server(tmp_path: Path) -> Iterator[HubServer]:
    """A real hub serving in a thread of this process, on a free loopback port."""
    ctx: zmq.Context[Any] = zmq.Context()
    server = HubServer("tcp://127.0.0.1:*", tmp_path / "data", context=ctx, events=None)
    server.start()
    yield server
    server.stop()
    ctx.destroy(linger=0)
