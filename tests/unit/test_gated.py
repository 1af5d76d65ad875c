"""The connection's ledger of gated deliveries: credit stays exact, nothing is lost."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from celeriac._protocol import TaskMessage
from celeriac.actors.task_actor import Delivery
from celeriac.transport.session.gated import GatedDeliveries

PREFETCH = 4


def delivery(n: int) -> Delivery:
    """A delivery tagged ``t<n>``."""
    return Delivery(TaskMessage(f"id{n}", "t.limited"), "celery", tag=f"t{n}")


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(st.tuples(st.sampled_from("arf"), st.integers(0, 50)), max_size=200),
    max_uncredited=st.integers(0, 6),
)
def test_credit_is_exact_and_nothing_is_lost(
    ops: list[tuple[str, int]], max_uncredited: int
) -> None:
    """Arrivals, releases and finishes in any order: hub credit + running + held against the
    prefetch - debt == prefetch, credit never negative; at shutdown every delivery is either
    finished, running, or handed back, once."""
    ledger, credit, running, finished, n = GatedDeliveries(max_uncredited), PREFETCH, [], [], 0
    for op, pick in ops:
        if op == "a" and credit > 0:  # the hub sends one (never more than the credit)
            credit -= 1
            credit += ledger.offer(f"t{n}", delivery(n))
            n += 1
        elif op == "r" and ledger.waiting:  # the type's actor releases one
            tag = sorted(ledger.waiting)[pick % len(ledger.waiting)]
            released = ledger.release(tag)
            assert released is not None
            running.append(released)
        elif op == "f" and running:  # a released one finishes: its DONE returns credit
            finished.append(running.pop(pick % len(running)))
            credit += ledger.credit_back()
        assert credit >= 0
        assert len(ledger.uncredited) <= max_uncredited
        assert credit + len(running) + ledger.holding_credit() - ledger.debt == PREFETCH
    handed_back = ledger.take_unstarted()
    tags = [d.tag for d in [*finished, *running, *handed_back]]
    assert sorted(tags) == sorted(f"t{i}" for i in range(n))
    assert not ledger.waiting
    assert not ledger.ready


def test_release_after_hand_back_is_ignored() -> None:
    """A release that crosses a shutdown finds nothing: the delivery went back to the hub."""
    ledger = GatedDeliveries()
    assert ledger.offer("t1", delivery(1)) == 1
    assert [d.tag for d in ledger.take_unstarted()] == ["t1"]
    assert ledger.release("t1") is None
    assert ledger.debt == 0


def test_hello_forgives_the_debt_and_counts_what_holds_credit() -> None:
    """After a HELLO the announced credit is the truth: no debt; tags name every delivery."""
    ledger = GatedDeliveries(max_uncredited=1)
    assert ledger.offer("t1", delivery(1)) == 1
    assert ledger.offer("t2", delivery(2)) == 0  # past the bound: it keeps its credit
    assert ledger.holding_credit() == 1
    released = ledger.release("t1")
    assert released is not None
    ledger.ready.append(released)
    assert ledger.debt == 1
    assert sorted(ledger.tags()) == ["t1", "t2"]
    ledger.hello()
    assert ledger.credit_back() == 1
