"""The hub's side of update_state and result_extended (transport/hub/taskstates.py), sans-IO."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac import states
from celeriac._clock import FakeClock
from celeriac.transport import protocol as p
from celeriac.transport.hub.taskstates import EXTENDED_PREFIX
from celeriac.transport.hubstate import HubState

C, W, X = b"client", b"worker", b"stranger"
JSON = "application/json"
BODY = b'[[2, 3], {"k": 1}, {}]'


@pytest.fixture
def hub(open_store: Any) -> Any:
    """A hub whose worker holds task t1 (published by the client)."""
    store = open_store()
    hub = HubState(store, FakeClock(1000.0), hub_id="h")
    decl = p.Declare(queues=(p.QueueDecl("celery"),))
    hub.handle(C, p.encode(p.Hello("client", "c", declare=decl)))
    hub.handle(W, p.encode(p.Hello("worker", "w1", queues=("celery",), credit=1)))
    hub.handle(X, p.encode(p.Hello("worker", "evil", queues=(), credit=0)))
    task = p.TaskMessage("t1", "add", BODY, queue="celery", reply=True, retries=1)
    hub.handle(C, p.encode(p.Publish((task,))))
    hub.tick()
    store.commit()
    hub.outbox.clear()
    yield hub
    store.close()


def ask(hub: HubState, message: p.Message, kind: type) -> Any:
    hub.outbox.clear()
    hub.handle(C, p.encode(message))
    replies = [p.decode(f[1:]) for f in hub.outbox]
    hub.outbox.clear()
    found = [m for m in replies if isinstance(m, kind)]
    assert len(found) == 1
    return found[0]


def progress(who: bytes, state: str = "PROGRESS", meta: bytes = b'{"n": 1}') -> list[bytes]:
    return p.encode(p.TaskState("t1", state=state, meta=meta, content_type=JSON))


def done(hub: HubState, store: bool = True) -> None:
    result = p.ResultMessage("t1", states.SUCCESS, b"5", JSON, store=store, credit=1)
    hub.handle(W, p.encode(p.Done((result,))))


def test_progress_is_answered_by_stat_and_info_until_the_task_ends(hub: HubState) -> None:
    """The holder's custom state answers STAT and INFO (with its meta and the request); once the
    task ended, its result answers and the progress is gone."""
    hub.handle(W, progress(W))
    assert ask(hub, p.Stat("t1", 1), p.Reply).state == "PROGRESS"
    info = ask(hub, p.InfoQuery("t1", 2), p.TaskInfo)
    assert (info.state, info.rid) == ("PROGRESS", 2)
    assert (info.meta, info.content_type) == (b'{"n": 1}', JSON)
    assert (info.name, info.queue, info.worker, info.retries) == ("add", "celery", "w1", 1)
    assert (info.args, info.args_type, info.date_done) == (BODY, JSON, None)
    done(hub)
    assert ask(hub, p.Stat("t1", 3), p.Reply).state == states.SUCCESS
    after = ask(hub, p.InfoQuery("t1", 4), p.TaskInfo)
    assert (after.state, after.meta, after.name) == (states.SUCCESS, None, None)  # not extended
    assert hub._progress == {}


def test_a_stranger_cannot_set_the_state(hub: HubState) -> None:
    """COMPAT.STATE follows the ownership rules: only the holder's node may report."""
    hub.handle(X, progress(X, state="HACKED"))
    assert hub.counters["refused"] == 1
    assert ask(hub, p.Stat("t1", 1), p.Reply).state == states.RECEIVED
    assert ask(hub, p.InfoQuery("t1", 2), p.TaskInfo).meta is None


def test_extended_request_is_kept_with_the_result_and_forgotten_with_it(hub: HubState) -> None:
    """With the extended mark the hub stores the request beside the result (with date_done);
    FORGET drops both. Without a stored result (ignore_result) nothing is kept."""
    hub.handle(W, p.encode(p.TaskState("t1", extended=True)))
    hub.clock.advance(5.0)  # type: ignore[attr-defined]
    done(hub)
    info = ask(hub, p.InfoQuery("t1", 1), p.TaskInfo)
    assert (info.state, info.name, info.worker, info.retries) == (states.SUCCESS, "add", "w1", 1)
    assert (info.args, info.date_done) == (BODY, 1005.0)
    hub.handle(C, p.encode(p.Forget("t1")))
    assert hub.store.get_result(EXTENDED_PREFIX + "t1") is None
    assert ask(hub, p.InfoQuery("t1", 2), p.TaskInfo).state == states.PENDING


def test_unknown_and_queued_ids(hub: HubState) -> None:
    """INFO of an unknown id is PENDING with nothing else; a queued task shows its request."""
    assert ask(hub, p.InfoQuery("nope", 1), p.TaskInfo) == p.TaskInfo("nope", states.PENDING, 1)
    hub.handle(C, p.encode(p.Publish((p.TaskMessage("t2", "mul", BODY, queue="celery"),))))
    queued = ask(hub, p.InfoQuery("t2", 2), p.TaskInfo)
    assert (queued.state, queued.name, queued.worker) == (states.PENDING, "mul", None)


def test_a_peer_sending_a_hub_reply_is_distrusted(hub: HubState) -> None:
    """COMPAT.INFO_REPLY is the hub's to send: a peer sending it is refused like a REPLY."""
    hub.handle(X, p.encode(p.TaskInfo("t1", states.SUCCESS)))
    assert hub.store.get_result("t1") is None


def test_largest_meta_and_arguments_fit_one_reply(open_store: Any) -> None:
    """A 32 KiB meta with 24 KiB of arguments still decodes at the client; larger arguments
    are left out (args None), never an undecodable reply."""
    store = open_store()
    hub = HubState(store, FakeClock(), hub_id="h")
    decl = p.Declare(queues=(p.QueueDecl("celery"),))
    hub.handle(C, p.encode(p.Hello("client", "c", declare=decl)))
    hub.handle(W, p.encode(p.Hello("worker", "w1", queues=("celery",), credit=2)))
    fits, too_big = b"[" + b"1," * (p.MAX_ARGS // 2 - 2) + b"1]", b"x" * (p.MAX_ARGS + 1)
    for tid, body in (("fits", fits), ("big", too_big)):
        hub.handle(C, p.encode(p.Publish((p.TaskMessage(tid, "add", body, queue="celery"),))))
        meta = b'"' + b"m" * (p.MAX_META - 2) + b'"'
        hub.handle(W, p.encode(p.TaskState(tid, state="PROGRESS", meta=meta)))
    assert len(fits) <= p.MAX_ARGS
    assert ask(hub, p.InfoQuery("fits", 1), p.TaskInfo).args == fits
    assert ask(hub, p.InfoQuery("big", 2), p.TaskInfo).args is None
    store.close()
