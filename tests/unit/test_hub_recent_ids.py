"""The hub's compact memory of recently done ids behaves as the dict it replaced."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac.transport.hub.recent import RecentIds

_IDS = st.text(alphabet="abcdef0123", min_size=0, max_size=3)


@given(capacity=st.integers(1, 12), ops=st.lists(st.tuples(st.booleans(), _IDS), max_size=300))
def test_recent_ids_match_a_bounded_ordered_dict(
    capacity: int, ops: list[tuple[bool, str]]
) -> None:
    """Adds and lookups agree with the former ``OrderedDict`` (oldest forgotten first, an id
    added again keeps its place), with a tiny table where probes wrap and shift back."""
    recent, model = RecentIds(capacity), OrderedDict[str, None]()
    for add, mid in ops:
        if add:
            recent.add(mid)
            if mid not in model:
                model[mid] = None
                if len(model) > capacity:
                    model.popitem(last=False)
        assert (mid in recent) == (mid in model)
        assert len(recent) == len(model)
    for mid in model:
        assert mid in recent


def test_recent_ids_keep_the_last_hundred_thousand() -> None:
    """At the hub's size: the last 100,000 distinct ids are known, the ones before are not."""
    recent = RecentIds(100_000)
    ids = [f"task-{i}" for i in range(150_000)]
    for mid in ids:
        recent.add(mid)
    assert len(recent) == 100_000
    assert not any(mid in recent for mid in ids[:50_000])
    assert all(mid in recent for mid in ids[50_000:])
    assert 123 not in recent


def test_recent_ids_refuse_no_room() -> None:
    """A capacity under one is a programming error, said at once."""
    with pytest.raises(ValueError, match="capacity"):
        RecentIds(0)
