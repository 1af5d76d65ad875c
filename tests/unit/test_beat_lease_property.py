"""Property: whatever the timing, no two beats ever believe they hold the lease at once.

Three beats talk to one sans-IO hub on a fake clock. Each request spends a random time in
flight before the hub handles it, and the answer another before the beat reads it; beats ask,
renew, release and fall silent in any order. A beat believes it holds the lease from the
moment it reads a grant until its own view ends (``asked + ttl``) or it releases it. The
intervals of different beats never overlap.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from celeriac._beatlease import LeaseView
from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

BEATS = 3
TTL = 3.0
#: Time a request or an answer spends in flight: mostly short, sometimes longer than a lease.
flight = st.sampled_from([0.0, 0.01, 0.1]) | st.floats(0.0, 0.5) | st.floats(0.0, 4.0)
#: Time that passes between two steps: often near a lease's end.
pause = st.sampled_from([0.5, 1.0, 2.5, 2.9, 3.0, 3.1]) | st.floats(0.0, 4.0)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("ask"), st.integers(0, BEATS - 1), flight, flight),
        st.tuples(st.just("release"), st.integers(0, BEATS - 1), flight, flight),
        st.tuples(st.just("wait"), st.just(0), pause, st.just(0.0)),
    ),
    max_size=40,
)


class World:
    """The hub, the beats' views, and the intervals each beat believed it held the lease."""

    def __init__(self) -> None:
        self.clock = FakeClock(1000.0)
        self.hub = HubState(MemoryStore(), self.clock, hub_id="h")
        self.views = [LeaseView(ttl=TTL, renew_every=1.0) for _ in range(BEATS)]
        self.held: list[list[list[float]]] = [[] for _ in range(BEATS)]
        for i in range(BEATS):
            self.hub.handle(f"b{i}".encode(), p.encode(p.Hello("client", f"b{i}")))

    def now(self) -> float:
        return self.clock.monotonic()

    def roundtrip(self, i: int, ttl: float, there: float, back: float) -> p.BeatGrant:
        self.clock.advance(there)
        self.hub.outbox.clear()
        self.hub.handle(f"b{i}".encode(), p.encode(p.BeatLease("k", f"b{i}", ttl)))
        (frames,) = self.hub.outbox
        answer = p.decode(frames[1:])
        assert isinstance(answer, p.BeatGrant)
        self.clock.advance(back)
        return answer

    def ask(self, i: int, there: float, back: float) -> None:
        asked = self.now()
        grant = self.roundtrip(i, TTL, there, back)
        view = self.views[i]
        if grant.granted:
            view.granted(asked, grant.ttl)
            if view.holds(self.now()) and view.held_until is not None:
                self.held[i].append([self.now(), view.held_until])
        else:
            view.refused(asked, grant.ttl)
            self.stop_believing(i)

    def release(self, i: int, there: float, back: float) -> None:
        if not self.views[i].holds(self.now()):
            return
        self.views[i].lost()
        self.stop_believing(i)  # the beat stops firing before it says so
        self.roundtrip(i, 0.0, there, back)

    def stop_believing(self, i: int) -> None:
        for interval in self.held[i]:
            interval[1] = min(interval[1], self.now())


@settings(max_examples=300, deadline=None)
@given(steps)
@example([("ask", 0, 0.0, 0.0), ("wait", 0, 2.6, 0.0), ("ask", 1, 0.0, 0.0)])  # just before
@example([("ask", 0, 0.0, 0.0), ("wait", 0, TTL, 0.0), ("ask", 1, 0.0, 0.0)])  # at the end
def test_no_two_beats_ever_hold_the_lease_at_once(
    script: list[tuple[str, int, float, float]],
) -> None:
    """Beat i's belief intervals never overlap beat j's, for any timing of requests and answers."""
    world = World()
    for action, i, first, second in script:
        if action == "ask":
            world.ask(i, first, second)
        elif action == "release":
            world.release(i, first, second)
        else:
            world.clock.advance(first)
    for i in range(BEATS):
        for j in range(i + 1, BEATS):
            for a_start, a_end in world.held[i]:
                for b_start, b_end in world.held[j]:
                    overlap = min(a_end, b_end) - max(a_start, b_start)
                    assert overlap <= 0, (i, (a_start, a_end), j, (b_start, b_end))
