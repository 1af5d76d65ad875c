"""The id filter (a Bloom filter): never a false "not there", and rarely a false "maybe"."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac.transport.idfilter import IdFilter


@pytest.mark.property
@given(st.sets(st.text(max_size=40), max_size=200), st.sets(st.text(max_size=40), max_size=50))
def test_every_added_id_might_be_there(added: set[str], others: set[str]) -> None:
    """No false negatives, whatever the ids (a tiny filter, so collisions are common)."""
    ids = IdFilter(bits=256)
    for key in added:
        ids.add(key)
    assert all(ids.might_contain(key) for key in added)
    assert ids.count == len(added)
    for key in others - added:  # a "maybe" may be wrong; the call never fails
        assert ids.might_contain(key) in (True, False)


def test_false_positives_are_rare_at_the_designed_load() -> None:
    """One id per 8 bits: about 2 % false positives (3 hashes); we allow 5 %."""
    ids = IdFilter(bits=1 << 16)
    for i in range(8192):
        ids.add(f"task-{i}")
    wrong = sum(ids.might_contain(f"other-{i}") for i in range(10_000))
    assert wrong < 500
    assert not IdFilter(bits=64).might_contain("x")


def test_the_size_must_be_a_power_of_two() -> None:
    """A size the mask cannot address is refused at once."""
    with pytest.raises(ValueError, match="power of two"):
        IdFilter(bits=1000)
