"""The worker session recalls what waits in a busy slot (run-ahead): after ``giveback`` seconds
behind a long task, and at a shutdown. Only the deliveries the loop reports withdrawn go back to
the hub; one the slot had begun runs, and nothing runs twice or is lost.

The property's model of the real slots is what a ThreadPool does: each slot's actor takes what it
was handed in order, runs one only if it can take its claim (a recall takes the claim first, and
exactly one side wins), reports each outcome through a queue the connection reads later, and a
dead actor drops what it held.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac.runtime.connection import batched
from celeriac.transport import protocol as p
from celeriac.transport.session import (
    Effect,
    Recall,
    Run,
    Send,
    Starting,
    Stop,
    WorkerConfig,
    WorkerSession,
)

from .test_worker_session_run_ahead import T0, delivery, done, sent
from .test_worker_session_run_ahead import session as run_ahead_session

GIVEBACK = 2.0


def session(*, slots: int = 1, **options: Any) -> WorkerSession:
    """One slot by default; heartbeats far off (only the give-back's clock matters here)."""
    return run_ahead_session(slots=slots, heartbeat=100.0, giveback=GIVEBACK, **options)


def rejected(effects: list[Effect]) -> list[str]:
    return [r.id for m in sent(effects) if isinstance(m, p.Reject) for r in m.rejections]


def recalls(effects: list[Effect]) -> list[tuple[int, str]]:
    return [(s, d.task.id) for e in effects if isinstance(e, Recall) for s, d in e.waiting]


def taken(effects: list[Effect]) -> list[tuple[int, p.Delivery]]:
    """Every delivery of the effects' recalls, as withdrawn by the loop."""
    return [pair for e in effects if isinstance(e, Recall) for pair in e.waiting]


def test_what_waits_behind_a_long_task_is_recalled_and_given_back_with_its_credit() -> None:
    """Past giveback behind a running task, the waiting delivery is recalled; once withdrawn
    it goes back (REJ), its credit held until a slot frees, and the slot takes no more."""
    s = session(track_started=True)
    s.handle(p.Deliver((delivery("a"), delivery("b"))), T0)  # a runs, b waits in slot 0
    assert not recalls(s.tick(T0 + 1.0))
    effects = s.tick(T0 + GIVEBACK + 0.5)
    assert recalls(effects) == [(0, "b")]
    assert not rejected(effects)  # not before the loop says it was withdrawn
    back = s.recalled(taken(effects))
    assert rejected(back) == ["b"]
    assert not s.queued[0]
    assert s.withheld == 1
    assert "b" not in s.inflight()
    s.handle(p.Deliver((delivery("c"),)), T0 + 3)
    assert [d.task.id for d in s.buffer] == ["c"]  # not handed to the stuck slot
    assert not s.queued[0]
    after = s.outcome(0, done("a"), T0 + 4)
    assert [(e.slot, e.delivery.task.id) for e in after if isinstance(e, Starting)] == [(0, "c")]
    assert p.Start((p.TaskRef("b", None),)) not in sent(after)


def test_a_recall_that_fails_leaves_the_delivery_to_start_with_the_outcome_before_it() -> None:
    """The slot had begun it: nothing goes back, it starts when the outcome before it arrives,
    and it is not recalled again meanwhile."""
    s = session(track_started=True)
    s.handle(p.Deliver((delivery("a"), delivery("b"))), T0)
    assert recalls(s.tick(T0 + GIVEBACK + 0.5)) == [(0, "b")]
    assert s.recalled([]) == []
    assert [d.task.id for d in s.queued[0]] == ["b"]
    assert not recalls(s.tick(T0 + 3 * GIVEBACK))
    after = s.outcome(0, done("a"), T0 + 10)
    started = [r.id for m in sent(after) if isinstance(m, p.Start) for r in m.started]
    assert started == ["b"]
    assert s.busy[0].task.id == "b"
    assert s.withheld == 0


def test_the_wait_is_counted_from_the_start_of_the_task_it_waits_behind() -> None:
    """A slot that moves on in time is never recalled from: the wait starts again with each
    task the slot starts."""
    s = session()
    s.handle(p.Deliver(tuple(delivery(t) for t in "abcd")), T0)  # a runs, b waits; c, d buffered
    s.outcome(0, done("a"), T0 + GIVEBACK - 0.5)  # b starts, c waits behind it from now
    assert not recalls(s.tick(T0 + GIVEBACK + 0.5))
    assert recalls(s.tick(T0 + 2 * GIVEBACK)) == [(0, "c")]


def test_a_warm_shutdown_recalls_what_waits_in_the_slots() -> None:
    """At a shutdown everything waiting in a slot is recalled: the one withdrawn goes back, the
    one its slot had begun runs, then the worker stops."""
    s = session(slots=2)
    s.handle(p.Deliver(tuple(delivery(t) for t in "abcde")), T0)  # 1: a, c; 0: b, d; buffer e
    effects = s.shutdown(T0, timeout=10)
    assert rejected(effects) == ["e"]
    assert sorted(recalls(effects)) == [(0, "d"), (1, "c")]
    back = s.recalled([pair for pair in taken(effects) if pair[0] == 0])  # slot 1 began c
    assert rejected(back) == ["d"]
    assert s.withheld == 0  # draining: no credit is owed
    s.outcome(0, done("b"), T0 + 1)
    assert 0 in s.free
    s.outcome(1, done("a"), T0 + 1)
    assert s.busy[1].task.id == "c"
    assert not [e for e in s.tick(T0 + 2) if isinstance(e, Stop)]
    s.outcome(1, done("c"), T0 + 3)
    assert [e for e in s.tick(T0 + 3) if isinstance(e, Stop)] == [Stop(cold=False)]


def test_the_hello_after_a_recall_no_longer_lists_it() -> None:
    """A withdrawn delivery is not held: the HELLO neither lists nor counts it."""
    s = session(prefetch=4)
    s.handle(p.Deliver((delivery("a"), delivery("b"))), T0)
    s.recalled(taken(s.tick(T0 + GIVEBACK + 1)))
    (hello,) = sent(s.connect(T0 + 4))
    assert isinstance(hello, p.Hello)
    assert hello.inflight == ("a",)
    assert hello.credit == 3


def test_a_slot_that_frees_takes_what_waits_behind_another_slots_task() -> None:
    """When a slot frees while another holds a delivery waiting behind its task, that one is
    recalled and, withdrawn, runs in the free slot at once (not back to the hub)."""
    s = session(slots=2)
    s.handle(p.Deliver(tuple(delivery(t) for t in "abc")), T0)  # 1: a, c waiting; 0: b
    assert [d.task.id for d in s.queued[1]] == ["c"]
    effects = s.outcome(0, done("b"), T0 + 0.5)
    assert recalls(effects) == [(1, "c")]
    moved = s.recalled(taken(effects))
    assert [(e.slot, e.delivery.task.id) for e in moved if isinstance(e, Run)] == [(0, "c")]
    assert not rejected(moved)
    assert s.busy[0].task.id == "c"
    assert not s.queued[1]
    assert s.withheld == 0


def test_with_deep_run_ahead_a_slot_that_frees_takes_one_and_the_rest_stay() -> None:
    """Several wait in a slot when another frees: only the last of them is recalled (it would
    start last) and runs in the free slot; the others stay where they wait, none goes back to
    the hub, and the slot they wait in may still be handed more."""
    s = session(slots=2, prefetch=8, run_ahead=3)
    s.handle(p.Deliver(tuple(delivery(t) for t in "abcdefg")), T0)
    deep = max(s.queued, key=lambda slot: len(s.queued[slot]))
    quick = 1 - deep
    assert (len(s.queued[deep]), len(s.queued[quick])) == (3, 2)
    last = s.queued[deep][-1].task.id
    now, effects = T0, []
    while quick in s.busy:  # the quick slot runs through all it holds, and frees
        now += 0.1
        effects = s.outcome(quick, done(s.busy[quick].task.id), now)
    assert recalls(effects) == [(deep, last)]
    moved = s.recalled(taken(effects))
    assert [(e.slot, e.delivery.task.id) for e in moved if isinstance(e, Run)] == [(quick, last)]
    assert not rejected(moved)
    assert len(s.queued[deep]) == 2
    assert deep not in s.stuck


def test_a_released_gated_delivery_recalled_waits_for_a_slot_here() -> None:
    """A delivery its type released (its token spent) that waited behind a long task is not
    handed to the hub when recalled: it waits with the other released ones for a slot."""
    config = WorkerConfig(
        node="w@host",
        endpoint="tcp://hub:5555",
        queues=("celery",),
        slots=1,
        prefetch=4,
        heartbeat=100.0,
        giveback=GIVEBACK,
        run_ahead=1,
    )
    s = WorkerSession(config, T0, gate=lambda d: d.task.id == "g")
    s.handle(p.Deliver((delivery("a"), delivery("g"))), T0)  # a runs; g goes to its gate
    assert [(e.slot, e.delivery.task.id) for e in s.released("g", T0) if isinstance(e, Run)] == [
        (0, "g")
    ]
    effects = s.tick(T0 + GIVEBACK + 0.5)
    assert recalls(effects) == [(0, "g")]
    back = s.recalled(taken(effects))
    assert not rejected(back)
    assert [d.task.id for d in s.gated.ready] == ["g"]
    assert "g" in s.inflight()
    after = s.outcome(0, done("a"), T0 + 4)
    assert [(e.slot, e.delivery.task.id) for e in after if isinstance(e, Run)] == [(0, "g")]


# -- the property: slots that race the recalls ---------------------------------------------------


class Slots:
    """What a ThreadPool's slots do, with claims, and outcomes the connection reads later."""

    def __init__(self, n: int) -> None:
        self.inbox: list[deque[p.Delivery]] = [deque() for _ in range(n)]
        #: What each slot's actor runs (a dead one: what it died with, until replaced).
        self.running: list[p.Delivery | None] = [None] * n
        self.claims: list[dict[str, p.Delivery]] = [{} for _ in range(n)]
        self.dead = [False] * n
        #: Outcomes and deaths, in the order the connection reads them: (slot, delivery or None).
        self.reports: deque[tuple[int, p.Delivery | None]] = deque()
        self.begun: list[str] = []
        self.killed: list[str] = []

    def submit(self, slot: int, d: p.Delivery) -> None:
        self.claims[slot][d.delivery_tag] = d
        if not self.dead[slot]:  # a dead actor drops it (the pool's suppressed ActorDeadError)
            self.inbox[slot].append(d)
            self.take(slot)

    def take(self, slot: int) -> None:
        """An idle actor takes its next claimed delivery (a withdrawn one is skipped)."""
        inbox, claims = self.inbox[slot], self.claims[slot]
        while self.running[slot] is None and inbox:
            d = inbox.popleft()
            if claims.get(d.delivery_tag) is d:
                del claims[d.delivery_tag]
                self.running[slot] = d
                self.begun.append(d.task.id)

    def finish(self, slot: int) -> None:
        """The slot's task ends: its outcome is reported; it takes its next one later (its
        thread may lose the GIL in between: :meth:`take`)."""
        d = self.running[slot]
        if d is not None and not self.dead[slot]:
            self.reports.append((slot, d))
            self.running[slot] = None

    def die(self, slot: int) -> None:
        d = self.running[slot]
        if d is not None and not self.dead[slot]:
            self.dead[slot] = True
            self.killed.append(d.task.id)
            self.inbox[slot].clear()
            self.reports.append((slot, None))

    def replaced(self, slot: int) -> None:
        self.dead[slot] = False
        self.running[slot] = None
        self.claims[slot].clear()

    def recall(self, slot: int, tag: str) -> bool:
        return self.claims[slot].pop(tag, None) is not None

    def held(self, slot: int) -> list[str]:
        """What the session should think the slot holds: the outcomes not read yet, what runs
        (or died), what was handed to it and not begun nor withdrawn (its claims, in order)."""
        unread = [d.task.id for s, d in self.reports if s == slot and d is not None]
        running = self.running[slot]
        now = [] if running is None else [running.task.id]
        return [*unread, *now, *(d.task.id for d in self.claims[slot].values())]


#: Weighted by repetition: mostly work and time; deaths and reconnects now and then. The number
#: says how many to deliver, which slot finishes or dies, how many reports are read, how long to
#: wait (in half givebacks).
KINDS = ["deliver"] * 4 + ["finish", "begin"] * 3 + ["read"] * 3 + ["wait"] * 2
KINDS += ["die", "reconnect"]
steps = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(1, 4)), min_size=5, max_size=60)


class World:
    """A session and its slots, the loop between them, a clock and what went back to the hub."""

    def __init__(self, n: int, run_ahead: int = 1) -> None:
        self.n = n
        self.s = session(slots=n, prefetch=8, run_ahead=run_ahead)
        self.slots = Slots(n)
        self.given_back: list[str] = []
        self.received = 0
        self.now = T0

    def perform(self, effects: list[Effect]) -> None:
        """The connection's part: submit, recall through the claims, send."""
        for effect in effects:
            if isinstance(effect, Run):
                self.slots.submit(effect.slot, effect.delivery)
            elif isinstance(effect, Recall):
                recall = self.slots.recall
                withdrawn = [(i, d) for i, d in effect.waiting if recall(i, d.delivery_tag)]
                self.perform(self.s.recalled(withdrawn))
            elif isinstance(effect, Send) and isinstance(effect.message, p.Reject):
                self.given_back.extend(r.id for r in effect.message.rejections)
            elif isinstance(effect, Send) and isinstance(effect.message, p.Hello):
                assert effect.message.credit >= 0

    def read(self, count: int) -> None:
        """The connection reads ``count`` reports of the slots (outcomes, deaths): as its
        inbox turn does, the effects of consecutive outcomes are performed together, but for
        a recall, performed at once (:func:`celeriac.runtime.connection.batched`)."""
        effects: list[Effect] = []
        for _ in range(count):
            if not self.slots.reports:
                break
            slot, d = self.slots.reports.popleft()
            if d is None:
                self.perform(effects)
                effects = []
                self.slots.replaced(slot)
                self.perform(self.s.lost(slot, self.now))
            elif batched(effects, self.s.outcome(slot, done(d.task.id), self.now)):
                self.perform(effects)
                effects = []
        self.perform(effects)

    def step(self, kind: str, k: int) -> None:
        s = self.s
        if kind == "deliver" and s.accepting:
            credit = 8 - len(s.inflight())
            batch = tuple(delivery(f"t{self.received + i}") for i in range(min(k, credit)))
            self.received += len(batch)
            self.perform(s.handle(p.Deliver(batch), self.now))
        elif kind == "finish":
            self.slots.finish(k % self.n)
        elif kind == "begin":
            self.slots.take(k % self.n)
        elif kind == "read":
            self.read(k)
        elif kind == "wait":
            self.now += GIVEBACK * k / 2
            self.perform(s.tick(self.now))
        elif kind == "die":
            self.slots.die(k % self.n)
        elif kind == "reconnect":
            self.perform(s.connect(self.now))
        elif kind == "shutdown":
            self.perform(s.shutdown(self.now, timeout=1000.0))

    def check_views(self) -> None:
        """The session's view of each slot is the slot's own."""
        for slot in range(self.n):
            running = self.s.busy.get(slot)
            view = [] if running is None else [running.task.id]
            assert [*view, *(d.task.id for d in self.s.queued[slot])] == self.slots.held(slot)

    def settle(self) -> None:
        """Let everything end with no more faults."""
        for _ in range(4 * (self.received + self.n)):
            for slot in range(self.n):
                self.slots.take(slot)
                self.slots.finish(slot)
            self.read(len(self.slots.reports))
        assert not self.s.busy
        assert not any(self.s.queued.values())


@settings(max_examples=300)
@given(steps, st.one_of(st.none(), st.integers(0, 20)), st.sampled_from([1, 3]))
def test_recalls_racing_the_slots_never_run_a_task_twice_nor_lose_one(
    events: list[tuple[str, int]], shutdown_at: int | None, run_ahead: int
) -> None:
    """Deliveries, slots finishing (outcomes read later), stalls past giveback, slot deaths,
    reconnects and a shutdown, in any order: the session's view of each slot is the slot's own,
    no task begins twice or both runs and goes back, and every one is accounted for; with one
    or (deeper run-ahead) three waiting in a slot."""
    world = World(2, run_ahead)
    for i, (kind, k) in enumerate(events):
        world.step("shutdown" if i == shutdown_at else kind, k)
        world.check_views()
    world.settle()
    begun, killed = world.slots.begun, set(world.slots.killed)
    assert len(begun) == len(set(begun)), "a task began twice"
    ran, back = set(begun) - killed, set(world.given_back)
    assert len(world.given_back) == len(back), "a task went back twice"
    assert not ran & back, "a task both ran and went back"
    assert killed <= back, "a task cut short by its slot's death did not go back"
    held = {d.task.id for d in world.s.buffer}
    assert ran | back | held == {f"t{i}" for i in range(world.received)}  # nothing lost
