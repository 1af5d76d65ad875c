"""Ownership: strangers cannot end, reject, start, read or forget what is not theirs."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import states
from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState

C, W, X = b"client", b"worker", b"stranger"
JSON = "application/json"


@pytest.fixture
def hub(open_store: Any) -> Any:
    """A hub (on each store) whose worker holds task t1."""
    store = open_store()
    hub = HubState(store, FakeClock(), hub_id="h")
    decl = p.Declare(queues=(p.QueueDecl("celery"),))
    hub.handle(C, p.encode(p.Hello("client", "c", declare=decl)))
    hub.handle(W, p.encode(p.Hello("worker", "w1", queues=("celery",), credit=1)))
    task = p.TaskMessage("t1", "add", b"[[],{},{}]", queue="celery", reply=True)
    hub.handle(C, p.encode(p.Publish((task,))))
    hub.tick()
    store.commit()
    hub.outbox.clear()
    yield hub
    store.close()


def out(hub: HubState, kind: type) -> list[tuple[bytes, Any]]:
    msgs = [(f[0], p.decode(f[1:])) for f in hub.outbox]
    hub.outbox.clear()
    return [(who, m) for who, m in msgs if isinstance(m, kind)]


def done(who: bytes, tid: str = "t1", state: str = states.SUCCESS) -> list[bytes]:
    return p.encode(p.Done((p.ResultMessage(tid, state, b"666", JSON, store=True, credit=1),)))


def stat(hub: HubState, who: bytes, tid: str = "t1") -> str | None:
    hub.outbox.clear()
    hub.handle(who, p.encode(p.Stat(tid, 1)))
    replies = out(hub, p.Reply)
    return replies[0][1].state if replies else None


def introduce_stranger(hub: HubState, role: str = "worker") -> None:
    hub.handle(X, p.encode(p.Hello(role, "evil", queues=(), credit=0)))
    hub.outbox.clear()


@pytest.mark.parametrize("introduced", [False, True])
def test_forged_done_from_a_stranger_changes_nothing(hub: HubState, introduced: bool) -> None:
    """A DONE for a delivery held by another peer is refused; the real worker's DONE counts."""
    if introduced:
        introduce_stranger(hub)
    hub.handle(X, done(X, state=states.FAILURE))
    assert hub.counters["refused"] == 1
    assert hub.counters["acked"] == 0
    assert hub.store.get_result("t1") is None
    assert out(hub, p.Result) == []
    hub.handle(W, done(W))
    assert hub.counters["acked"] == 1
    assert [m.results[0].body for who, m in out(hub, p.Result) if who == C] == [b"666"]


@pytest.mark.parametrize("introduced", [False, True])
def test_forged_reject_and_start_from_a_stranger_change_nothing(
    hub: HubState, introduced: bool
) -> None:
    """REJ (with or without requeue) and START from a stranger leave the delivery alone."""
    if introduced:
        introduce_stranger(hub)
    hub.handle(X, p.encode(p.Reject((p.Rejection("t1", requeue=False),))))
    hub.handle(X, p.encode(p.Reject((p.Rejection("t1", requeue=True),))))
    hub.handle(X, p.encode(p.Start((p.TaskRef("t1"),))))
    assert hub.counters["rejected"] == 0
    assert hub.counters["redelivered"] == 0
    assert hub.store.get_result("t1") is None
    assert stat(hub, C) == states.RECEIVED  # not STARTED: the forged START was refused


def test_done_for_a_message_not_out_for_delivery_is_refused(hub: HubState) -> None:
    """An outcome for a queued or unknown id is refused even from a worker."""
    task = p.TaskMessage("t2", "add", b"[[],{},{}]", queue="celery")
    hub.handle(C, p.encode(p.Publish((task,))))  # queued: the worker has no credit left
    hub.handle(W, done(W, "t2"))
    hub.handle(W, done(W, "never-published"))
    assert hub.counters["refused"] == 2
    assert hub.store.get_result("t2") is None
    assert hub.store.get_result("never-published") is None


def test_a_prefork_parent_may_end_its_childs_delivery(hub: HubState) -> None:
    """A peer of the same node (host/parent for host/0) may report for a child it killed."""
    child, parent = b"child", b"parent"
    hub.handle(child, p.encode(p.Hello("worker", "host/0", queues=("celery",), credit=1)))
    task = p.TaskMessage("t3", "add", b"[[],{},{}]", queue="celery")
    hub.handle(C, p.encode(p.Publish((task,))))
    hub.handle(parent, p.encode(p.Hello("client", "host/parent")))
    hub.handle(parent, done(parent, "t3", states.FAILURE))
    assert hub.counters["refused"] == 0
    assert hub.store.get_result("t3") is not None


def test_anonymous_wait_stat_forget_are_refused_with_err_hello(hub: HubState) -> None:
    """Without a HELLO, WAIT/STAT/FORGET get ERR hello, read nothing and delete nothing."""
    hub.handle(W, done(W))
    hub.outbox.clear()
    hub.handle(X, p.encode(p.Wait(("t1",))))
    hub.handle(X, p.encode(p.Stat("t1", 1)))
    hub.handle(X, p.encode(p.Forget("t1")))
    replies = out(hub, object)
    assert [type(m) for _, m in replies] == [p.Error] * 3
    assert {m.code for _, m in replies} == {"hello"}
    assert hub.store.get_result("t1") is not None
    assert hub.counters["refused"] == 3


def test_after_a_hello_any_peer_that_knows_the_id_reads_the_result(hub: HubState) -> None:
    """AsyncResult(id) from another process: an introduced client reads a result by its id."""
    hub.handle(W, done(W))
    introduce_stranger(hub, role="client")
    hub.handle(X, p.encode(p.Wait(("t1",))))
    assert [m.results[0].body for _, m in out(hub, p.Result)] == [b"666"]
    assert stat(hub, X) == states.SUCCESS


def test_anonymous_credit_and_consume_do_nothing(hub: HubState) -> None:
    """CRED and CONSUME from a peer that never said HELLO deliver nothing to it."""
    task = p.TaskMessage("t4", "add", b"[[],{},{}]", queue="celery")
    hub.handle(C, p.encode(p.Publish((task,))))
    hub.handle(X, p.encode(p.Consume(("celery",))))
    hub.handle(X, p.encode(p.Credit(5)))
    assert [who for who, _ in out(hub, p.Deliver)] == []
