"""The client session without sockets: confirms, resend to a new hub, waits, NACKs, STAT, and
what it says when the hub is not answering (fake time, typed effects)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from celeriac.transport import protocol as p
from celeriac.transport.session import (
    Answer,
    ClientSession,
    Effect,
    Log,
    Resolve,
    Send,
    Settled,
)

T0 = 1000.0


def session(**kw: float) -> ClientSession:
    return ClientSession(
        endpoint="tcp://hub:5555",
        declare=p.Declare(queues=(p.QueueDecl("celery"),)),
        heartbeat=kw.get("heartbeat", 1.0),
        connect_timeout=kw.get("connect_timeout", 4.0),
        now=T0,
    )


def task(tid: str, *, reply: bool = False) -> p.TaskMessage:
    return p.TaskMessage(tid, "t", b"[]", queue="celery", reply=reply)


def sent(effects: list[Effect]) -> list[p.Message]:
    return [e.message for e in effects if isinstance(e, Send)]


def logged(effects: list[Effect]) -> list[str]:
    return [e.event for e in effects if isinstance(e, Log)]


def welcomed(s: ClientSession, hub: str = "hub-a") -> None:
    s.handle(p.Welcome(hub, 1.0), T0)


def test_connect_says_hello_with_the_declarations() -> None:
    """The first message is a client HELLO carrying the declared queues."""
    (hello,) = sent(session().connect())
    assert isinstance(hello, p.Hello)
    assert hello.role == "client"
    assert hello.declare is not None
    assert [q.name for q in hello.declare.queues] == ["celery"]


def test_a_publish_is_sent_and_kept_until_confirmed() -> None:
    """A publish goes out at once, stays held, and a CONF of all of them says Settled."""
    s = session()
    assert sent(s.publish(task("a"))) == [p.Publish((task("a"),))]
    s.publish(task("b"))
    assert set(s.unconfirmed) == {"a", "b"}
    assert s.handle(p.Confirm(("a",)), T0) == []
    assert s.handle(p.Confirm(("b",)), T0) == [Settled()]
    assert s.unconfirmed == {}


@given(st.lists(st.sampled_from("abcdef"), unique=True), st.sampled_from(["welcome", "pong"]))
def test_a_new_hub_gets_every_unconfirmed_publish_again(confirmed: list[str], how: str) -> None:
    """Meeting a new hub incarnation resends exactly the unconfirmed publishes."""
    s = session()
    welcomed(s)
    for tid in "abcdef":
        s.publish(task(tid))
    s.handle(p.Confirm(tuple(confirmed)), T0)
    seen = p.Welcome("hub-b", 1.0) if how == "welcome" else p.Pong("hub-b", known=True)
    effects = s.handle(seen, T0)
    resent = {m.tasks[0].id for m in sent(effects) if isinstance(m, p.Publish)}
    assert resent == set("abcdef") - set(confirmed)
    assert "hub_changed" in logged(effects)
    assert any(isinstance(m, p.Hello) for m in sent(effects)) == (how == "pong")


def test_the_same_hub_is_not_caught_up_again() -> None:
    """A PONG from the hub already known changes nothing."""
    s = session()
    welcomed(s)
    s.publish(task("a"))
    assert s.handle(p.Pong("hub-a", known=True), T0) == []


def test_a_hub_that_forgot_us_gets_a_hello_and_the_waits() -> None:
    """ERR hello: HELLO again, resend, and WAIT again for the results still awaited."""
    s = session()
    welcomed(s)
    s.await_result("x")
    msgs = sent(s.handle(p.Error("hello", hub="hub-a"), T0))
    assert isinstance(msgs[0], p.Hello)
    assert p.Wait(("x",)) in msgs


def test_a_result_wakes_its_waiter_or_waits_for_one() -> None:
    """A result for an awaited id resolves it; an early one resolves the later wait at once."""
    s = session()
    assert sent(s.await_result("a")) == [p.Wait(("a",))]
    ra, rb = p.ResultMessage("a", "SUCCESS", b"1"), p.ResultMessage("b", "SUCCESS", b"2")
    assert s.handle(p.Result((ra, rb)), T0) == [Resolve("a", ra)]
    assert s.await_result("b") == [Resolve("b", rb)]


def test_a_publish_asking_for_its_result_needs_no_wait() -> None:
    """reply=True: the hub pushes the result, so a wait sends nothing."""
    s = session()
    s.publish(task("a", reply=True))
    assert s.await_result("a") == []
    assert "a" in s.waiting


def test_a_nack_refuses_the_publish_and_resolves_its_waiter() -> None:
    """A NACK logs publish_refused, is kept for flush, ends the publish and wakes the waiter."""
    s = session()
    s.publish(task("a", reply=True))
    s.await_result("a")
    refusal = p.Refusal("a", "no route")
    effects = s.handle(p.Nack((refusal,)), T0)
    assert logged(effects) == ["publish_refused"]
    assert Resolve("a", refusal) in effects
    assert effects[-1] == Settled()
    assert s.take_refused() == [("a", "no route")]
    assert s.take_refused() == []


def test_a_stat_is_answered_by_its_reply_only() -> None:
    """STAT carries a fresh rid; the REPLY with that rid answers it; a cancelled one is dropped."""
    s = session()
    rid, effects = s.stat("a")
    assert sent(effects) == [p.Stat("a", rid)]
    reply = p.Reply("a", "PENDING", rid)
    assert s.handle(reply, T0) == [Answer(rid, reply)]
    rid2, _ = s.stat("a")
    s.cancel(rid2)
    assert s.handle(p.Reply("a", "PENDING", rid2), T0) == []


def test_heartbeats_are_sent_every_interval() -> None:
    """A PING when a heartbeat is due, none before."""
    s = session(heartbeat=1.0)
    assert s.tick(T0 + 0.5) == []
    assert sent(s.tick(T0 + 1.0)) == [p.Ping()]
    assert s.tick(T0 + 1.5) == []


def test_hub_not_answering_is_said_once_with_what_is_held() -> None:
    """Publishes held past the connect timeout with no hub: one warning, until it answers."""
    s = session(heartbeat=1.0, connect_timeout=4.0)
    s.publish(task("a"))
    said = [e for t in range(1, 20) for e in s.tick(T0 + t) if isinstance(e, Log)]
    assert [e.event for e in said] == ["hub_not_answering"]
    assert said[0].fields["held"] == 1
    assert logged(s.handle(p.Welcome("hub-a", 1.0), T0 + 20)) == ["hub_answering_again"]
    assert s.answering(T0 + 22)
    assert not s.answering(T0 + 23)


def test_nothing_is_said_when_nothing_is_held() -> None:
    """A silent hub with no publish held is not worth a warning."""
    s = session(heartbeat=1.0, connect_timeout=1.0)
    assert not [e for t in range(1, 20) for e in s.tick(T0 + t) if isinstance(e, Log)]


def test_a_hub_refusal_other_than_hello_is_logged() -> None:
    """ERR with another code is logged as hub_refused and changes nothing else."""
    s = session()
    assert logged(s.handle(p.Error("distrusted", "bad frame"), T0)) == ["hub_refused"]
    assert s.hub_id is None


def test_a_ping_from_the_hub_is_answered() -> None:
    """The hub's PING gets a PONG."""
    assert sent(session().handle(p.Ping(), T0)) == [p.Pong()]


def test_forget_drops_what_is_known_and_tells_the_hub() -> None:
    """forget() drops an early result and sends FORGET."""
    s = session()
    s.handle(p.Result((p.ResultMessage("a", "SUCCESS", b"1"),)), T0)
    assert sent(s.forget("a")) == [p.Forget("a")]
    assert sent(s.await_result("a")) == [p.Wait(("a",))]


def test_a_nack_for_a_publish_resent_and_then_confirmed_is_not_a_refusal() -> None:
    """ERR hello (resend), then the NACK of the first copy, then CONF of the resent copy: the
    publish ran, so it must not be reported refused."""
    s = session()
    welcomed(s)
    s.publish(task("a"))
    s.handle(p.Error("hello", hub="hub-b"), T0)
    s.handle(p.Nack((p.Refusal("a", "unroutable"),)), T0)
    s.handle(p.Confirm(("a",)), T0)
    assert s.take_refused() == []


def test_a_nack_after_the_welcome_is_still_a_refusal() -> None:
    """Once the hub has welcomed the re-HELLO, a NACK of the resent copy is a real refusal."""
    s = session()
    welcomed(s)
    s.publish(task("a"))
    s.handle(p.Error("hello", hub="hub-b"), T0)
    s.handle(p.Welcome("hub-b", 1.0), T0)
    s.handle(p.Nack((p.Refusal("a", "unroutable"),)), T0)
    assert s.take_refused() == [("a", "unroutable")]
    assert s.unconfirmed == {}


def capped(count: int, size: int) -> ClientSession:
    return ClientSession(
        endpoint="tcp://hub:5555",
        declare=p.Declare(),
        heartbeat=1.0,
        connect_timeout=4.0,
        now=T0,
        max_unconfirmed=count,
        max_unconfirmed_bytes=size,
    )


def test_the_session_is_full_at_its_cap_and_says_when_it_has_room_again() -> None:
    """Issue 16: publishes held for confirmation are capped in number; a confirm that makes
    room wakes a blocked publisher (Settled), one that does not says nothing."""
    s = capped(3, 1 << 20)
    for tid in "abc":
        assert not s.full()
        s.publish(task(tid))
    assert s.full()
    assert s.handle(p.Confirm(("a",)), T0) == [Settled()]
    assert not s.full()
    s.publish(task("d"))
    s.publish(task("d"))  # the same id again is held once
    assert s.full()
    assert s.unconfirmed_bytes == 3 * len(task("d").body)
    assert s.handle(p.Nack((p.Refusal("b", "unroutable"),)), T0)[-1] == Settled()
    assert s.handle(p.Confirm(("c", "d")), T0) == [Settled()]
    assert (s.unconfirmed, s.unconfirmed_bytes) == ({}, 0)


@given(st.lists(st.integers(0, 5000), max_size=40), st.integers(1, 20_000))
def test_the_byte_count_follows_what_is_held(sizes: list[int], cap: int) -> None:
    """Whatever is published and confirmed, unconfirmed_bytes is the sum of the held bodies
    and full() is exactly "at or over a cap"."""
    s = capped(10, cap)
    for i, n in enumerate(sizes):
        s.publish(p.TaskMessage(f"t{i % 7}", "t", b"x" * n, queue="celery"))
        if i % 3 == 2:
            s.handle(p.Confirm((f"t{i % 5}",)), T0)
        held = sum(len(m.body) for m in s.unconfirmed.values())
        assert s.unconfirmed_bytes == held
        assert s.full() == (len(s.unconfirmed) >= 10 or held >= cap)


def test_a_second_wait_after_a_pushed_result_asks_the_hub() -> None:
    """A result pushed to a waiter is no longer expected: waiting on that id again (a new
    AsyncResult after the client dropped the first one's slot) sends WAIT instead of waiting
    for a push that already came."""
    s = session()
    welcomed(s)
    s.publish(task("a", reply=True))
    assert s.await_result("a") == []  # the hub pushes a reply=True result without WAIT
    done = p.ResultMessage("a", "SUCCESS", b"1")
    # Settled: the RES confirms the publish it answers (transport/hub/confirmhold.py).
    assert [type(e) for e in s.handle(p.Result((done,)), T0)] == [Resolve, Settled]
    assert sent(s.await_result("a")) == [p.Wait(("a",))]


def test_a_result_confirms_the_publish_it_answers() -> None:
    """The client says in HELLO that a RES confirms its publish (the hub may then hold that
    CONF: transport/hub/confirmhold.py); a RES for one held unconfirmed releases it, one for
    another id leaves the unconfirmed alone, and a later CONF of it changes nothing."""
    s = session()
    (hello,) = sent(s.connect())
    assert isinstance(hello, p.Hello)
    assert hello.results_confirm
    welcomed(s)
    s.publish(task("a", reply=True))
    s.publish(task("b", reply=True))
    other = p.ResultMessage("zz", "SUCCESS", b"1")
    assert Settled() not in s.handle(p.Result((other,)), T0)
    assert set(s.unconfirmed) == {"a", "b"}
    s.handle(p.Result((p.ResultMessage("a", "SUCCESS", b"1"),)), T0)
    assert set(s.unconfirmed) == {"b"}
    assert s.handle(p.Confirm(("a", "b")), T0) == [Settled()]
    assert not s.unconfirmed
