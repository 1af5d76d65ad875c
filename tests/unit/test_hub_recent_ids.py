"""The hub's compact memory of recently done ids: two generations of hashes, at least the last
``capacity`` distinct ids known, at most twice that."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac.transport.hub.recent import RecentIds

_IDS = st.text(alphabet="abcdef0123", min_size=0, max_size=3)


class _Model:
    """The two generations as sets: the newer takes adds until it holds ``capacity`` ids."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.new: set[str] = set()
        self.old: set[str] = set()

    def add(self, mid: str) -> None:
        if mid in self.new:
            return
        if len(self.new) == self.capacity:
            self.old, self.new = self.new, set()
        self.new.add(mid)

    def __contains__(self, mid: str) -> bool:
        return mid in self.new or mid in self.old


@given(capacity=st.integers(1, 12), ops=st.lists(st.tuples(st.booleans(), _IDS), max_size=300))
def test_recent_ids_match_two_generations(capacity: int, ops: list[tuple[bool, str]]) -> None:
    """Adds and lookups agree with two generations of sets, with a tiny table where probes
    wrap; and the last ``capacity`` distinct ids (the bounded ``OrderedDict`` this replaced)
    are always known."""
    recent, model = RecentIds(capacity), _Model(capacity)
    last = OrderedDict[str, None]()
    for add, mid in ops:
        if add:
            recent.add(mid)
            model.add(mid)
            if mid not in last:
                last[mid] = None
                if len(last) > capacity:
                    last.popitem(last=False)
        assert (mid in recent) == (mid in model)
        assert len(recent) == len(model.new) + len(model.old)
    for mid in last:
        assert mid in recent


def test_recent_ids_keep_the_last_hundred_thousand() -> None:
    """At the hub's size: the last 100,000 distinct ids are always known; ids more than twice
    that many adds back are not."""
    recent = RecentIds(100_000)
    ids = [f"task-{i}" for i in range(250_000)]
    for n, mid in enumerate(ids, 1):
        recent.add(mid)
        if n in (99_999, 100_000, 100_001, 150_000):
            assert all(m in recent for m in ids[max(0, n - 100_000) : n])
    assert all(mid in recent for mid in ids[150_000:])
    assert not any(mid in recent for mid in ids[:100_000])
    assert all(mid in recent for mid in ids[100_000:])
    assert 123 not in recent


def test_recent_ids_refuse_no_room() -> None:
    """A capacity under one is a programming error, said at once."""
    with pytest.raises(ValueError, match="capacity"):
        RecentIds(0)
