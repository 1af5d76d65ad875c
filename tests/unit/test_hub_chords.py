"""Chords counted at the hub: the unlock is held until every header task ended, once."""

from __future__ import annotations

from typing import Any

from celeriac._clock import FakeClock
from celeriac.transport.hubstate import HubState

from .test_hubstate import W1, done, hello, make_hub, publish, sent


def _chord(hub: HubState, size: int) -> None:
    publish(hub, "unlock", reply=False, chord_size=size)
    for i in range(size):
        publish(hub, f"h{i}", chord="unlock")


def _delivered(hub: HubState) -> list[str]:
    return [m.header["id"] for _, m in sent(hub, b"TASK")]


def test_unlock_is_held_until_the_last_header_task_is_done() -> None:
    """The unlock message is delivered only after the third of three header tasks is done."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=10)
    _chord(hub, 3)
    assert _delivered(hub) == ["h0", "h1", "h2"]
    done(hub, W1, "h0", credit=0)
    done(hub, W1, "h1", credit=0)
    assert _delivered(hub) == []
    done(hub, W1, "h2", credit=0)
    assert _delivered(hub) == ["unlock"]


def test_a_header_task_acknowledged_twice_counts_once() -> None:
    """A duplicate DONE for a header task does not count: the unlock still waits."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=10)
    _chord(hub, 2)
    sent(hub)
    done(hub, W1, "h0", credit=0)
    done(hub, W1, "h0", credit=0)
    assert _delivered(hub) == []


def test_count_and_held_unlock_survive_a_hub_restart() -> None:
    """After a restart the unlock is held again and the counter goes on from where it was."""
    hub, store, clock = make_hub()
    hello(hub, W1, credit=10)
    _chord(hub, 2)
    sent(hub)
    done(hub, W1, "h0", credit=0)
    hub2 = HubState(store, clock, hub_id="hub-b")
    assert hub2.restore() == 2
    hello(hub2, W1, credit=10, inflight=["h1"])
    assert _delivered(hub2) == []
    done(hub2, W1, "h1", credit=0)
    assert _delivered(hub2) == ["unlock"]


def test_counter_commits_with_the_acknowledgement(open_store: Any) -> None:
    """In the store, the count and the header's removal are one commit: reopened, both hold."""
    clock = FakeClock()
    store = open_store()
    hub = HubState(store, clock, hub_id="hub-a")
    hub.handle(b"client", _declare())
    hello(hub, W1, credit=10)
    _chord(hub, 2)
    done(hub, W1, "h0", credit=0)
    hub.tick()
    store.close()
    store2 = open_store()
    hub2 = HubState(store2, clock, hub_id="hub-b")
    assert hub2.restore() == 2
    hello(hub2, W1, credit=10)
    assert _delivered(hub2) == ["h1"]
    done(hub2, W1, "h1", credit=0)
    assert _delivered(hub2) == ["unlock"]
    store2.close()


def test_unlock_published_after_its_header_ended_is_ready_at_once() -> None:
    """If the header already ended when the unlock arrives, it is not held."""
    hub, _, _ = make_hub()
    hello(hub, W1, credit=10)
    publish(hub, "h0", chord="unlock")
    sent(hub)
    done(hub, W1, "h0", credit=0)
    publish(hub, "unlock", reply=False, chord_size=1)
    assert _delivered(hub) == ["unlock"]


def _declare() -> list[bytes]:
    from celeriac.transport.frames import encode  # noqa: PLC0415 - test helper

    queue = {"name": "celery", "max_priority": None, "bindings": []}
    return encode(b"DECLARE", {"exchanges": [], "queues": [queue]})


def test_the_counter_goes_with_the_unlock() -> None:
    """Once the unlock itself is done, its counter is deleted: nothing is left to expire
    (so result_chord_expires has nothing to act on)."""
    hub, store, _ = make_hub()
    hello(hub, W1, credit=10)
    _chord(hub, 2)
    sent(hub)
    done(hub, W1, "h0", credit=0)
    done(hub, W1, "h1", credit=0)
    assert _delivered(hub) == ["unlock"]
    assert store.get_meta("chord:unlock") is not None
    done(hub, W1, "unlock", credit=0, store=False)
    assert store.get_meta("chord:unlock") is None


def test_the_store_deletes_a_counter_in_the_turn(open_store: Any) -> None:
    """Each store deletes a metadata value in the turn's transaction (a chord's counter),
    seen at once and after a restart."""
    store = open_store()
    store.set_meta("chord:x", b"\x01")
    store.commit()
    store.delete_meta("chord:x")
    assert store.get_meta("chord:x") is None
    store.commit()
    assert open_store().get_meta("chord:x") is None
