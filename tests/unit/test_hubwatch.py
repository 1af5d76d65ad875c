"""Whether the hub answers, as log effects: each line said once per change, never a flood."""

from __future__ import annotations

from celeriac.transport.session import HubWatch, Log


def _said(effects: list[object]) -> list[Log]:
    return [effect for effect in effects if isinstance(effect, Log)]


def test_waiting_for_hub_is_said_at_growing_intervals() -> None:
    """Before the hub first answers: lines at 2 s, then 4, 8, 16 s later, then every 30 s."""
    watch = HubWatch("tcp://hub:5555", started=100.0, heartbeat=2.0)
    said: list[float] = []
    lines: list[Log] = []
    for tenth in range(1000, 2300):  # 100.0 s to 229.9 s in tenths
        t = tenth / 10
        new = _said(list(watch.tick(t, running=0)))
        if new:
            said.append(t)
            lines.extend(new)
    assert said == [102.0, 106.0, 114.0, 130.0, 160.0, 190.0, 220.0]
    assert {line.event for line in lines} == {"waiting_for_hub"}
    assert lines[0].fields["endpoint"] == "tcp://hub:5555"
    assert lines[0].level == "warning"


def test_a_lost_hub_is_said_once_and_its_return_once() -> None:
    """Silence past three heartbeats gives one hub_lost however long it lasts; one hub_back."""
    watch = HubWatch("tcp://hub:5555", started=0.0, heartbeat=1.0)
    lines: list[Log] = []
    lines += _said(list(watch.heard(1.0)))
    for t in (2.0, 3.9, 4.1, 10.0, 100.0):
        lines += _said(list(watch.tick(t, running=2)))
    lines += _said(list(watch.heard(101.0)))
    lines += _said(list(watch.heard(101.5)))
    lines += _said(list(watch.tick(102.0, running=0)))
    assert [line.event for line in lines] == ["hub_lost", "hub_back"]
    assert lines[0].fields["running"] == 2
    assert lines[1].fields["silent_for"] == 100.0
    assert watch.last_heard == 101.5
