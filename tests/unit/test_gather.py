"""Collecting control replies: complete, limited, timed out, or with no hub at all."""

from __future__ import annotations

import msgpack

from celeriac.runtime.gather import Gathers
from celeriac.transport import protocol as p


def test_replies_complete_when_every_node_answered() -> None:
    """The wait ends as soon as each node named by CTLSENT answered."""
    gathers = Gathers()
    gather = gathers.open("r", None)
    gathers.arrived(p.ControlSent("r", ("a", "b"), ("ghost",)))
    gathers.arrived(p.ControlReply("r", "a", msgpack.packb({"ok": 1})))
    gathers.arrived(p.ControlReply("r", "b", b"\xc1"))  # a node's bad body: said, not raised
    gathers.arrived(p.ControlReply("other", "c", b""))  # another request's: ignored
    got = gather.wait(30.0)
    assert got.replies["a"] == {"ok": 1}
    assert "undecodable" in got.replies["b"]["error"]
    assert got.missing == ["ghost"]
    gathers.close("r")


def test_limit_timeout_and_a_silent_hub() -> None:
    """limit ends the wait early; a silent node is missing after the timeout; no CTLSENT at
    all reports the hub itself missing."""
    gathers = Gathers()
    limited = gathers.open("l", 1)
    gathers.arrived(p.ControlSent("l", ("a", "b")))
    gathers.arrived(p.ControlReply("l", "b", msgpack.packb(None)))
    assert limited.wait(30.0).missing == ["a"]
    silent = gathers.open("s", None)
    gathers.arrived(p.ControlSent("s", ("a",)))
    assert silent.wait(0.05).missing == ["a"]
    nohub = gathers.open("n", None).wait(0.01)
    assert (nohub.missing, nohub.hub_answered) == (["hub"], False)
    fire_and_forget = gathers.open("f", None)
    gathers.arrived(p.ControlSent("f", ("a",)))
    assert fire_and_forget.wait(30.0, want_replies=False).replies == {}
