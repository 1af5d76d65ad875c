"""Who holds a port, for the hub's "address in use" line (issue 16), on this machine's /proc."""

from __future__ import annotations

import os
import socket
import sys

import pytest
import zmq

from celeriac.transport.hubserver import HubAddressError
from celeriac.transport.portholder import port_holder

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_the_process_listening_on_a_port_is_named() -> None:
    """A socket listening here: this process's pid and command; a closed port: None."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        holder = port_holder(f"tcp://127.0.0.1:{port}")
        assert holder is not None
        assert holder.startswith(f"pid {os.getpid()}: ")
    assert port_holder(f"tcp://127.0.0.1:{port}") is None
    assert port_holder("ipc:///tmp/x") is None
    assert port_holder("tcp://127.0.0.1:*") is None


def test_the_address_in_use_message_names_the_holder() -> None:
    """The hub's one line for a taken port says who holds it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        error = HubAddressError(url, zmq.ZMQError(98))
    assert str(error).startswith(f"cannot listen at {url}: the address is in use (held by pid ")
    assert "is a hub already running there?" in str(error)
