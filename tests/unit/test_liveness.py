"""Why a result waits, as a client says it (pure)."""

from __future__ import annotations

import pytest

from celeriac import states
from celeriac.runtime.liveness import explain_reply
from celeriac.transport import protocol as p


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (p.Reply("t1", states.STARTED, worker="w@a"), "running on worker w@a"),
        (p.Reply("t1", states.RECEIVED, worker="w@a"), "worker w@a has it"),
        (p.Reply("t1", states.PENDING, queue="q", consumers=0), "no worker consumes 'q'"),
        (p.Reply("t1", states.PENDING, queue="q", consumers=2), "queued in 'q' (2 consumer(s))"),
        (p.Reply("t1", states.SUCCESS), "stored at the hub (state SUCCESS)"),
        (p.Reply("t1", states.PENDING), "the hub does not know it"),
    ],
)
def test_explain_reply(reply: p.Reply, words: str) -> None:
    """Each thing the hub can say about a message becomes the matching reason."""
    assert words in explain_reply(reply)


def test_reply_carries_where_the_message_is_over_the_wire() -> None:
    """queue, consumers and worker survive encode/decode."""
    reply = p.Reply("t1", states.RECEIVED, 7, "q", 3, "w@a")
    assert p.decode(p.encode(reply)) == reply
