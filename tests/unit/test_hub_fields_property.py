"""Field-aware fuzzing of the hub state over real SQLite: only refusals come out, restarts work.

Hypothesis builds messages with the protocol's own field names (each command's wire keys),
starting from plausible values (so publishes, deliveries and outcomes really happen) and then
putting any value type in any field: lists, maps, huge ints, NaN, infinities, empty strings,
bytes. It drives ``handle``, ``tick`` (with time moving), the group commit and a restart
(``restore`` on the same file), and holds that no exception leaves the hub, that the hub counts
no internal error, and that everything it accepted is restored (nothing set aside).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celeriac import _wire, _wire_parts
from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store import SQLiteStore

pytestmark = pytest.mark.property

JSON = "application/json"
IDS = ("a", "b", "c", "a:celery", "")
PEERS = (b"c1", b"w1", b"w2", b"stranger")

#: Each command's wire keys, read from the codec's own tables.
_ITEM_TABLES = {
    b"PUB": _wire_parts.TASK,
    b"TASK": _wire_parts.TASK,
    b"DONE": _wire_parts.RESULT,
    b"RES": _wire_parts.RESULT,
    b"START": _wire_parts.TASK_REF,
    b"REJ": _wire_parts.REJECTION,
    b"NACK": _wire_parts.REFUSAL,
}
FIELDS: dict[bytes, list[str]] = {
    **{cmd: list(t.by_key) for cmd, t in _wire._CONTROL.items()},
    **{cmd: list(t.by_key) for cmd, t in _ITEM_TABLES.items()},
}
COMMANDS = sorted(FIELDS)

#: Every integer msgpack can carry.
packable_ints = st.integers(-(2**63), 2**64 - 1)
wild = st.one_of(
    st.none(),
    st.booleans(),
    packable_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x" * 300, "celery", "SUCCESS", "worker", *IDS]),
    st.binary(max_size=8),
    st.lists(st.one_of(packable_ints, st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), packable_ints, max_size=2),
)
ids = st.sampled_from(IDS)


@st.composite
def plausible(draw: st.DrawFn, command: bytes) -> dict[str, Any]:
    """A header that would mostly be accepted, so the hub's state really moves."""
    tid = draw(ids)
    headers: dict[bytes, dict[str, Any]] = {
        b"HELLO": {
            "role": draw(st.sampled_from(["worker", "client"])),
            "node": draw(st.sampled_from(["w1", "w1/0", "w2", "c"])),
            "queues": ["celery"],
            "credit": draw(st.integers(0, 3)),
            "declare": {
                "queues": [{"name": "celery", "max_priority": draw(st.none() | st.just(9))}]
            },
            "inflight": draw(st.lists(ids, max_size=2)),
        },
        b"PUB": {
            "id": tid,
            "task": "t",
            "ct": JSON,
            "queue": draw(st.sampled_from(["celery", "nowhere"])),
            "reply": draw(st.booleans()),
            "eta": draw(st.none() | st.floats(999_990.0, 1_000_020.0)),
            "expires": draw(st.none() | st.floats(999_990.0, 1_000_050.0)),
            "priority": draw(st.none() | st.integers(0, 255)),
            "unroutable": draw(st.sampled_from(["error", "dead_letter"])),
        },
        b"DONE": {"id": tid, "state": "SUCCESS", "ct": JSON, "store": draw(st.booleans())},
        b"START": {"id": tid},
        b"REJ": {"id": tid, "requeue": draw(st.booleans()), "credit": 1},
        b"CRED": {"credit": draw(st.integers(0, 3))},
        b"CONSUME": {"queues": ["celery"]},
        b"WAIT": {"ids": [tid]},
        b"STAT": {"id": tid, "rid": 1},
        b"FORGET": {"id": tid},
    }
    return dict(headers.get(command, {}))


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A sender and frames: a plausible header with some fields given wild values."""
    command = draw(st.sampled_from(COMMANDS))
    header = draw(plausible(command))
    for key in draw(st.lists(st.sampled_from(FIELDS[command] or ["x"]), max_size=3)):
        header[key] = draw(wild)
    body = draw(st.sampled_from([b"", b"[[],{},{}]", b"\xc1"]))
    return draw(st.sampled_from(PEERS)), [p.TAG, command, msgpack.packb(header), body]


steps = st.lists(
    st.one_of(
        messages(),
        st.tuples(st.just("tick"), st.floats(0.0, 30.0)),
        st.just(("restart", 0.0)),
    ),
    max_size=40,
)


class Harness:
    """A hub over a real SQLite file that can be restarted on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = FakeClock()
        self.store, self.hub = self._open()

    def _open(self) -> tuple[SQLiteStore, HubState]:
        store = SQLiteStore(self.path / "hub.sqlite3")
        hub = HubState(store, self.clock, hub_id="h")
        hub.restore()
        store.commit()
        return store, hub

    def step(self, step: Any) -> None:
        kind, arg = step
        if kind == "tick":
            self.clock.advance(arg)
            self.hub.tick()
        elif kind == "restart":
            self.restart()
        else:
            self.hub.handle(kind, arg)
        self.store.commit()
        self.hub.outbox.clear()
        self.hub.events.clear()

    def restart(self) -> None:
        self.store.close()
        self.store, self.hub = self._open()
        assert self.hub.counters["set_aside"] == 0, self.store.set_aside_rows()


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_any_field_of_any_type_is_a_refusal_and_restarts_come_up(plan: list[Any]) -> None:
    """No input makes handle/tick/commit/restore raise or count an internal error."""
    with tempfile.TemporaryDirectory() as tmp:
        harness = Harness(Path(tmp))
        try:
            for step in plan:
                harness.step(step)
                assert harness.hub.counters["internal_errors"] == 0
            harness.restart()
        finally:
            harness.store.close()
