"""Property: whatever the interleaving of calls, completions and lost or new workers, a key
has at most one call in flight, its calls run (start and finish) in publish order, even when a
lost worker's call is redelivered, and none is lost."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

CLS = "app.Box"
KEYS = ("a", "b", "c")

ops = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.sampled_from(KEYS)),
        st.tuples(st.just("done"), st.integers(0, 5)),
        st.tuples(st.just("lose"), st.integers(0, 5)),
        st.tuples(st.just("join"), st.just(0)),
    ),
    max_size=60,
)


class Model:
    """Drives a HubState and checks every delivery it sends."""

    def __init__(self) -> None:
        # No dead letters here (a call whose workers keep dying is one, as a task would be).
        self.hub = HubState(MemoryStore(), FakeClock(), hub_id="h", max_deliveries=10_000)
        self.hub.handle(b"client", p.encode(p.Hello("client")))
        self.n = 0
        self.published: dict[str, list[str]] = {k: [] for k in KEYS}
        self.started: dict[str, list[str]] = {k: [] for k in KEYS}
        self.inflight: dict[bytes, dict[str, str]] = {}  # worker -> key -> id
        self.finished: set[str] = set()
        self.completed: dict[str, list[str]] = {k: [] for k in KEYS}
        self.workers = 0

    def join(self) -> None:
        who = f"w{self.workers}".encode()
        self.workers += 1
        self.inflight[who] = {}
        queues = (p.host_queue(CLS),)
        self.hub.handle(who, p.encode(p.Hello("worker", who.decode(), queues=queues)))

    def call(self, key: str) -> None:
        tid = f"t{self.n}"
        self.n += 1
        self.published[key].append(tid)
        task = p.TaskMessage(tid, f"{CLS}.m", b"[[],{},{}]", queue=p.keyed_queue(CLS, key))
        self.hub.handle(b"client", p.encode(p.Publish((task,))))

    def done(self, i: int) -> None:
        live = [w for w, held in self.inflight.items() if held]
        if live:
            who = live[i % len(live)]
            key, tid = next(iter(self.inflight[who].items()))
            del self.inflight[who][key]
            self.finished.add(tid)
            self.completed[key].append(tid)
            self.hub.handle(who, p.encode(p.Done((p.ResultMessage(tid, "SUCCESS", b"1"),))))

    def lose(self, i: int) -> None:
        if self.inflight:
            who = sorted(self.inflight)[i % len(self.inflight)]
            del self.inflight[who]
            self.hub.peer_unreachable(who)

    def absorb(self) -> None:
        """Check what the hub sent since last time."""
        for frames in self.hub.outbox:
            msg = p.decode(frames[1:])
            if not isinstance(msg, p.Deliver):
                continue
            for d in msg.deliveries:
                key = p.split_keyed_queue(d.queue)[1]
                held = self.inflight[frames[0]]
                assert key not in held, "two calls of one key in flight"
                assert all(key not in h for h in self.inflight.values()), "key on two workers"
                held[key] = d.task.id
                if d.task.id not in self.started[key]:
                    self.started[key].append(d.task.id)
        self.hub.outbox.clear()


@settings(max_examples=200, deadline=None)
@given(ops)
def test_keyed_calls_one_at_a_time_in_order_none_lost(steps: list[tuple[str, Any]]) -> None:
    """Any interleaving keeps per-key order and exclusivity, and drains completely."""
    model = Model()
    model.join()
    for op, arg in steps:
        getattr(model, op)(*(() if op == "join" else (arg,)))
        model.absorb()
    if not model.inflight:
        model.join()
        model.absorb()
    while any(model.inflight.values()):  # drain: finish everything
        model.done(0)
        model.absorb()
    for key in KEYS:
        assert model.started[key] == model.published[key][: len(model.started[key])]
        assert set(model.published[key]) <= model.finished, f"{key}: a call was lost"
        assert model.completed[key] == model.published[key], f"{key}: ran out of order"
