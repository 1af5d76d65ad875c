"""The beat timer actor and its lease view, on a fake clock and a fake hub (no sockets)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from celeriac import App
from celeriac._beat import check_beat_schedule
from celeriac._beatlease import TAKEOVER_MARGIN, LeaseView
from celeriac._beatplan import Tick, slot_task_id
from celeriac._clock import FakeClock
from celeriac._protocol import BeatGrant
from celeriac.actors.beat import BeatTimer

START = 1_800_000_000.0


class FakeHub:
    """A BeatPort that records what the timer did and answers as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.granted = True
        self.holder = "me"
        self.state: dict[str, float] = {}
        self.confirm = True
        self.save_ok = True
        self.silent = False
        self.reason: str | None = None

    def lease(self, ttl: float) -> BeatGrant | None:
        self.calls.append(("lease", ttl))
        if self.silent:
            return None
        if self.granted:
            return BeatGrant("k", True, "me", ttl, dict(self.state))
        if self.reason is not None:
            return BeatGrant("k", False, reason=self.reason)
        return BeatGrant("k", False, "other", 1.0)

    def release(self) -> None:
        self.calls.append(("release", None))

    def save(self, state: Mapping[str, float]) -> BeatGrant | None:
        self.calls.append(("save", dict(state)))
        if self.save_ok:
            self.state = dict(state)
        return BeatGrant("k", self.save_ok, "me" if self.save_ok else "other")

    def send(self, tick: Tick) -> None:
        self.calls.append(("send", tick))

    def flush(self, timeout: float) -> bool:
        self.calls.append(("flush", timeout))
        return self.confirm

    def sent(self) -> list[Tick]:
        return [arg for name, arg in self.calls if name == "send"]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class Timers:
    """A fake ``call_later``: records each timer; :meth:`fire` runs the live one."""

    def __init__(self) -> None:
        self.live: tuple[float, Callable[[], None]] | None = None
        self.delays: list[float] = []

    def __call__(self, delay: float, fn: Callable[[], None]) -> Callable[[], None]:
        entry = (delay, fn)
        self.live = entry
        self.delays.append(delay)

        def cancel() -> None:
            if self.live is entry:
                self.live = None

        return cancel

    def fire(self) -> None:
        assert self.live is not None, "no timer set"
        _, fn = self.live
        self.live = None
        fn()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture
def timers() -> Timers:
    return Timers()


def entries(seconds: float = 1.0) -> dict[str, dict[str, Any]]:
    return check_beat_schedule({"e": {"task": "t", "schedule": seconds, "args": (1,)}})


@pytest.fixture
def start(clock: FakeClock, hub: FakeHub, timers: Timers) -> Iterator[Callable[..., Any]]:
    refs: list[Any] = []

    def start_timer(heartbeat: float = 0.5, seconds: float = 1.0) -> Any:
        ref = BeatTimer.start(
            hub,
            entries(seconds),
            heartbeat=heartbeat,
            max_interval=300.0,
            clock=clock,
            call_later=timers,
        )
        refs.append(ref)
        sync(ref)
        return ref

    yield start_timer
    for ref in refs:
        if ref.is_alive():
            ref.stop()


def sync(ref: Any) -> None:
    """Wait until the actor processed everything told so far."""
    ref.proxy().sent.get(timeout=5)


def turn(ref: Any, clock: FakeClock, timers: Timers, seconds: float) -> None:
    """Let ``seconds`` pass and fire the timer the actor set."""
    clock.advance(seconds)
    timers.fire()
    sync(ref)


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(START + seconds, dt.UTC)


def test_the_holder_fires_each_slot_once_and_saves_after_the_confirm(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """A new entry is anchored at start; each due slot is sent, confirmed, then saved."""
    ref = start()
    assert hub.names() == ["lease", "save"]  # anchored at now, nothing fired
    assert hub.state == {"e": START}
    turn(ref, clock, timers, 0.5)  # a renewal, nothing due
    assert hub.sent() == []
    turn(ref, clock, timers, 0.5)
    (tick,) = hub.sent()
    assert tick.slot == at(1.0)
    assert tick.task_id == slot_task_id("e", at(1.0))
    assert tick.args == (1,)
    assert hub.names()[-3:] == ["send", "flush", "save"]
    assert hub.state == {"e": START + 1.0}


def test_the_timer_sleeps_until_the_next_slot(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """No polling: with renewals far apart, the one timer set is the time to the next slot."""
    ref = start(heartbeat=60.0, seconds=7.0)
    assert timers.delays[-1] == pytest.approx(7.0)
    turn(ref, clock, timers, 7.0)
    assert len(hub.sent()) == 1
    assert timers.delays[-1] == pytest.approx(7.0)


def test_an_unconfirmed_publish_is_not_saved_and_is_sent_again_with_the_same_id(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """A hub that did not confirm: the state stays, and the retry carries the same task id."""
    ref = start()
    hub.confirm = False
    turn(ref, clock, timers, 1.0)
    turn(ref, clock, timers, 0.5)
    first, again = hub.sent()
    assert first.task_id == again.task_id
    assert hub.state == {"e": START}
    hub.confirm = True
    turn(ref, clock, timers, 0.5)
    assert hub.sent()[-1].task_id == first.task_id
    assert len(hub.sent()) == 3  # slot 2 passed meanwhile: one late firing stood for both
    assert hub.state == {"e": START + 2.0}


def test_a_standby_never_fires_and_asks_again_when_the_lease_may_end(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """Refused: nothing is sent; the next ask is at the holder's lease end (or a heartbeat)."""
    hub.granted = False
    ref = start(heartbeat=5.0)
    assert timers.delays[-1] == pytest.approx(1.0 + TAKEOVER_MARGIN)
    for _ in range(5):
        turn(ref, clock, timers, 1.0 + TAKEOVER_MARGIN)
    assert hub.sent() == []
    assert "save" not in hub.names()
    hub.granted = True
    turn(ref, clock, timers, 1.0 + TAKEOVER_MARGIN)
    assert hub.names()[-1] == "save"  # took over: the entry is anchored and saved


def test_a_lease_the_hub_refuses_is_said_once_with_its_reason(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """The hub's cap on leases: the beat fires nothing and logs the reason once, not a flood."""
    hub.granted, hub.reason = False, "the hub holds hub_max_beat_leases=1 leases"
    with capture_logs() as logs:
        ref = start(heartbeat=1.0)
        for _ in range(5):
            turn(ref, clock, timers, 1.0 + TAKEOVER_MARGIN)
    refused = [e for e in logs if e["event"] == "beat_lease_refused"]
    assert [e["reason"] for e in refused] == [hub.reason]
    assert not [e for e in logs if e["event"] == "beat_standby"]
    assert hub.sent() == []


def test_a_refused_save_means_the_lease_is_lost(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """The hub says another holds the lease: the timer stops firing until granted again."""
    ref = start()
    hub.save_ok = False
    turn(ref, clock, timers, 1.0)
    assert len(hub.sent()) == 1
    hub.granted = False
    for _ in range(4):
        turn(ref, clock, timers, 1.0)
    assert len(hub.sent()) == 1


def test_a_new_schedule_is_looked_at_at_once(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """replace() runs a turn without waiting for the timer: the new entry is anchored."""
    ref = start(heartbeat=60.0, seconds=60.0)
    more = check_beat_schedule({"f": {"task": "u", "schedule": 2.0}})
    ref.proxy().replace(more).get(timeout=5)
    sync(ref)
    assert hub.state == {"f": START}  # "e" is gone, "f" anchored
    assert timers.delays[-1] == pytest.approx(2.0)


def test_a_silent_hub_stops_the_firing_when_the_lease_runs_out(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """No answer to renewals: the beat fires until its view of the lease ends, then stops."""
    ref = start()  # heartbeat 0.5: a 1.5 s lease
    hub.silent = True
    turn(ref, clock, timers, 1.0)
    assert len(hub.sent()) == 1
    for _ in range(6):
        turn(ref, clock, timers, 0.5)
    assert len(hub.sent()) == 1  # slots at +2 s, +3 s... are not fired without the lease
    hub.silent = False
    turn(ref, clock, timers, 0.5)
    assert len(hub.sent()) == 2  # back: one late firing for what was missed


def test_stopping_releases_the_lease(
    start: Callable[..., Any], hub: FakeHub, timers: Timers
) -> None:
    """A beat that stops gives its lease up and sets no timer any more."""
    ref = start()
    ref.stop()
    assert hub.names()[-1] == "release"
    assert timers.live is None


def test_a_stale_timer_is_ignored(
    start: Callable[..., Any], clock: FakeClock, hub: FakeHub, timers: Timers
) -> None:
    """A wake-up from a timer replaced since does not run a turn."""
    ref = start(heartbeat=60.0, seconds=60.0)
    assert timers.live is not None
    _, stale = timers.live
    ref.proxy().replace(entries(60.0)).get(timeout=5)
    sync(ref)
    calls = len(hub.calls)
    stale()
    sync(ref)
    assert len(hub.calls) == calls


# -- the lease view, pure ------------------------------------------------------------------------


def test_the_beats_view_of_its_lease_ends_before_the_hubs() -> None:
    """Counted from when the request was sent: the hub (which got it later) holds it longer."""
    view = LeaseView(ttl=1.5, renew_every=0.5)
    assert not view.holds(0.0)
    assert view.ask_due(0.0)
    view.granted(asked=10.0, ttl=1.5)
    assert view.holds(11.49)
    assert not view.holds(11.5)
    assert not view.ask_due(10.4)
    assert view.ask_due(10.5)


def test_a_lease_not_renewed_runs_out_on_its_own() -> None:
    """A hub that stops answering: the beat stops firing when its view of the lease ends."""
    view = LeaseView(ttl=1.5, renew_every=0.5)
    view.granted(asked=0.0, ttl=1.5)
    view.unanswered(0.5)
    view.unanswered(1.0)
    assert view.holds(1.4)
    assert not view.holds(1.5)


def test_a_standby_asks_at_the_holders_lease_end_or_a_heartbeat() -> None:
    """Refused with 0.2 s left: ask again then (plus a margin); with 9 s left: a heartbeat."""
    view = LeaseView(ttl=6.0, renew_every=2.0)
    view.refused(asked=0.0, left=0.2)
    assert view.wake_in(0.0) == pytest.approx(0.2 + TAKEOVER_MARGIN)
    view.refused(asked=0.0, left=9.0)
    assert view.wake_in(0.0) == pytest.approx(2.0)
    view.granted(asked=5.0, ttl=6.0)
    view.lost()
    assert not view.holds(5.1)


# -- following the schedule ----------------------------------------------------------------------


def test_a_running_beat_hears_of_every_new_schedule() -> None:
    """beat_schedule assignments and add_periodic_task reach the watcher; unwatch stops it."""
    app = App("watched", environ={})
    seen: list[list[str]] = []
    unwatch = app.conf.watch("beat_schedule", lambda value: seen.append(sorted(value)))
    app.conf.beat_schedule = {"a": {"task": "t", "schedule": 5.0}}
    app.add_periodic_task(10.0, "u", name="b")
    unwatch()
    app.add_periodic_task(10.0, "u", name="c")
    assert seen == [["a"], ["a", "b"]]
