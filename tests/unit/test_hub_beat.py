"""The hub's beat lease and last-run state: one holder at a time, expiry, takeover, durability."""

from __future__ import annotations

from typing import Any

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store import Store
from celeriac.transport.store_memory import MemoryStore

A, B = b"beat-a", b"beat-b"


def make_hub(store: Store | None = None, clock: FakeClock | None = None) -> HubState:
    hub = HubState(store or MemoryStore(), clock or FakeClock(), hub_id="hub-a")
    for who in (A, B):
        hub.handle(who, p.encode(p.Hello("client", who.decode())))
    hub.outbox.clear()
    return hub


def ask(hub: HubState, who: bytes, message: p.Message) -> p.BeatGrant:
    """Send ``message`` from ``who``; the one BEAT_GRANT the hub answered."""
    hub.handle(who, p.encode(message))
    answers = [p.decode(f[1:]) for f in hub.outbox if f[0] == who]
    hub.outbox.clear()
    grants = [m for m in answers if isinstance(m, p.BeatGrant)]
    assert len(grants) == 1, answers
    return grants[0]


def lease(hub: HubState, who: bytes, ttl: float = 6.0, rid: int = 1) -> p.BeatGrant:
    return ask(hub, who, p.BeatLease("proj", who.decode(), ttl, rid))


def test_one_holder_at_a_time_and_the_others_learn_who() -> None:
    """The first beat to ask holds the lease; another is refused with the holder and time left."""
    hub = make_hub()
    first = lease(hub, A, rid=7)
    assert first.granted
    assert first.holder == "beat-a"
    assert first.ttl == 6.0
    assert first.rid == 7
    other = lease(hub, B)
    assert not other.granted
    assert other.holder == "beat-a"
    assert 0 < other.ttl <= 6.0


def test_the_hub_statistics_show_who_holds_each_schedule() -> None:
    """``hub stats`` (inspect) names the lease holder and the time left; nothing once released
    or run out."""
    clock = FakeClock()
    hub = make_hub(clock=clock)
    assert hub.statistics()["beat"] == {}
    assert lease(hub, A, ttl=6.0).granted
    clock.advance(1.0)
    assert hub.statistics()["beat"] == {"proj": {"holder": "beat-a", "expires_in": 5.0}}
    assert not ask(hub, A, p.BeatLease("proj", "beat-a", 0.0, 2)).granted  # a release
    assert hub.statistics()["beat"] == {}
    assert lease(hub, B, ttl=2.0).granted
    clock.advance(2.5)
    assert hub.statistics()["beat"] == {}


def test_the_holder_renews_and_keeps_it() -> None:
    """Renewals move the expiry on: a standby never gets it while the holder renews."""
    clock = FakeClock()
    hub = make_hub(clock=clock)
    for _ in range(10):
        assert lease(hub, A).granted
        clock.advance(2.0)
        assert not lease(hub, B).granted


def test_a_dead_holder_is_taken_over_after_its_lease_runs_out() -> None:
    """No renewal for ttl seconds: the next beat to ask takes the lease over."""
    clock = FakeClock()
    hub = make_hub(clock=clock)
    assert lease(hub, A, ttl=1.5).granted
    clock.advance(1.4)
    assert not lease(hub, B).granted
    clock.advance(0.2)
    taken = lease(hub, B)
    assert taken.granted
    assert taken.holder == "beat-b"
    assert not lease(hub, A).granted  # the old holder, back, is now the standby


def test_release_frees_the_lease_at_once() -> None:
    """A beat that stops says ttl 0; another takes over without waiting."""
    hub = make_hub()
    assert lease(hub, A).granted
    assert not lease(hub, A, ttl=0).granted
    assert lease(hub, B).granted


def test_a_non_holder_cannot_release_or_save() -> None:
    """Only the holder's release and state are taken."""
    hub = make_hub()
    assert lease(hub, A).granted
    lease(hub, B, ttl=0)  # not B's to release
    assert not lease(hub, B).granted
    refused = ask(hub, B, p.BeatSave("proj", "beat-b", {"e": 1.0}))
    assert not refused.granted
    assert refused.holder == "beat-a"
    assert hub.beat_state("proj") == {}


def test_a_save_after_the_lease_ran_out_is_refused() -> None:
    """A holder paused past its lease learns that it lost it; its state is not stored."""
    clock = FakeClock()
    hub = make_hub(clock=clock)
    assert lease(hub, A, ttl=1.0).granted
    clock.advance(1.5)
    assert not ask(hub, A, p.BeatSave("proj", "beat-a", {"e": 1.0})).granted
    assert hub.beat_state("proj") == {}


def test_the_state_is_handed_to_the_next_holder() -> None:
    """The holder's saved state comes with the lease to whoever holds it next."""
    hub = make_hub()
    assert lease(hub, A).granted
    assert ask(hub, A, p.BeatSave("proj", "beat-a", {"every": 1234.5})).granted
    lease(hub, A, ttl=0)
    taken = lease(hub, B)
    assert taken.granted
    assert dict(taken.state) == {"every": 1234.5}
    assert not lease(hub, A).state  # a refused beat is not told the state


def test_lease_and_state_survive_a_hub_restart(open_store: Any) -> None:
    """Both are in the store: a new hub on the same file knows the holder and the state."""
    clock = FakeClock()
    store = open_store()
    hub = make_hub(store, clock)
    assert lease(hub, A, ttl=6.0).granted
    assert ask(hub, A, p.BeatSave("proj", "beat-a", {"every": 99.0})).granted
    store.commit()
    store.close()
    clock.advance(1.0)
    restarted = make_hub(open_store(), clock)
    assert not lease(restarted, B).granted  # A's lease still runs
    renewed = lease(restarted, A)
    assert renewed.granted
    assert dict(renewed.state) == {"every": 99.0}


def test_schedules_of_two_apps_have_two_leases() -> None:
    """The lease is per key (the app's name): two apps' beats do not exclude each other."""
    hub = make_hub()
    assert ask(hub, A, p.BeatLease("one", "beat-a", 6.0)).granted
    assert ask(hub, B, p.BeatLease("two", "beat-b", 6.0)).granted


def test_a_stranger_is_asked_to_say_hello() -> None:
    """Beat commands from an unknown peer are refused like any other (HELLO first)."""
    hub = make_hub()
    hub.handle(b"stranger", p.encode(p.BeatLease("proj", "x", 6.0)))
    (frames,) = hub.outbox
    assert isinstance(p.decode(frames[1:]), p.Error)
    assert hub.beat_holder("proj") is None


def test_the_leases_are_capped_and_only_unheld_ones_make_room(tmp_path: Any) -> None:
    """Issue 16: at most hub_max_beat_leases leases; a new schedule while all are held is
    refused with the reason; questions about unknown keys add nothing; a lease that ran out
    is dropped (its row too) to make room, a held one never."""
    from celeriac.transport.hub.limits import HubLimits  # noqa: PLC0415
    from celeriac.transport.store import SQLiteStore  # noqa: PLC0415

    clock = FakeClock()
    store = SQLiteStore(tmp_path / "hub.sqlite3")
    try:
        hub = make_hub(store, clock)
        hub.apply_limits(HubLimits(max_beat_leases=2))
        assert ask(hub, A, p.BeatLease("one", "beat-a", 5.0, 1)).granted
        assert ask(hub, A, p.BeatLease("two", "beat-a", 60.0, 2)).granted
        refused = ask(hub, B, p.BeatLease("three", "beat-b", 60.0, 3))
        assert not refused.granted
        assert refused.reason is not None
        assert "hub_max_beat_leases=2" in refused.reason
        for i in range(200):  # releases and saves of keys nobody holds: refused, not kept
            ask(hub, B, p.BeatLease(f"x{i}", "beat-b", 0.0, i))
            ask(hub, B, p.BeatSave(f"y{i}", "beat-b", {"e": 1.0}, i))
        assert len(hub._leases) == 2
        clock.advance(10.0)  # "one" ran out; "two" is still held
        assert ask(hub, B, p.BeatLease("three", "beat-b", 60.0, 4)).granted
        assert set(hub._leases) == {"two", "three"}
        assert store.get_meta("beat.lease.one") is None
        assert ask(hub, A, p.BeatLease("two", "beat-a", 60.0, 5)).granted  # renewed, kept
        assert not ask(hub, A, p.BeatLease("four", "beat-a", 60.0, 6)).granted
        assert ask(hub, A, p.BeatLease("one", "beat-a", 5.0, 7)).reason is not None
        store.commit()
    finally:
        store.close()
