"""What a peer says about its hub: said once per change, and why a result waits (pure)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from celeriac import states
from celeriac.runtime.liveness import HubWatch, explain_reply
from celeriac.transport import protocol as p


def _events(logs: list[dict[str, object]]) -> list[object]:
    return [entry["event"] for entry in logs]


def test_waiting_for_hub_is_said_at_growing_intervals() -> None:
    """Before the hub first answers: lines at 2 s, then 4, 8, 16 s later, then every 30 s."""
    watch = HubWatch("tcp://hub:5555", started=100.0, heartbeat=2.0)
    said: list[float] = []
    with capture_logs() as logs:
        for tenth in range(1000, 2300):  # 100.0 s to 229.9 s in tenths
            t = tenth / 10
            before = len(logs)
            watch.tick(t, running=0)
            if len(logs) > before:
                said.append(t)
    assert said == [102.0, 106.0, 114.0, 130.0, 160.0, 190.0, 220.0]
    assert set(_events(logs)) == {"waiting_for_hub"}
    assert logs[0]["endpoint"] == "tcp://hub:5555"


def test_a_lost_hub_is_said_once_and_its_return_once() -> None:
    """Silence past three heartbeats gives one hub_lost however long it lasts; one hub_back."""
    watch = HubWatch("tcp://hub:5555", started=0.0, heartbeat=1.0)
    with capture_logs() as logs:
        watch.heard(1.0)
        for t in (2.0, 3.9, 4.1, 10.0, 100.0):
            watch.tick(t, running=2)
        watch.heard(101.0)
        watch.heard(101.5)
        watch.tick(102.0, running=0)
    assert _events(logs) == ["hub_lost", "hub_back"]
    assert logs[0]["running"] == 2
    assert logs[1]["silent_for"] == 100.0


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
