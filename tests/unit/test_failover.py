"""Several hubs in broker_url, without sockets: parsing and its errors, the failover order
(round-robin, shuffle, a callable), when a peer moves on, and what the client session resends
to the next hub (fake time, typed effects)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from celeriac._conf import Settings
from celeriac._hub_urls import failover_order
from celeriac.exceptions import ImproperlyConfigured, UnsupportedBrokerError
from celeriac.runtime.embedded import embedded_hub_plan
from celeriac.runtime.hub import run_hub
from celeriac.runtime.link import HubLink
from celeriac.transport import protocol as p
from celeriac.transport.endpoints import hub_addresses, hub_events_urls
from celeriac.transport.session import ClientSession, Dial, Effect, HubRotation, Log, Send
from celeriac.transport.session.failover import PROBE_GRACE, HubProbe

T0 = 1000.0
HUBS = "tcp://h1:5555;tcp://h2:5555;tcp://h3:5555"


def session(
    url: str = HUBS, heartbeat: float = 1.0, strategy: object = "round-robin"
) -> ClientSession:
    return ClientSession(
        endpoint=url,
        declare=p.Declare(queues=(p.QueueDecl("celery"),)),
        heartbeat=heartbeat,
        connect_timeout=4.0,
        now=T0,
        failover_strategy=strategy,  # type: ignore[arg-type]
    )


def task(tid: str, *, reply: bool = False) -> p.TaskMessage:
    return p.TaskMessage(tid, "t", b"[]", queue="celery", reply=reply)


def sent(effects: list[Effect]) -> list[p.Message]:
    return [e.message for e in effects if isinstance(e, Send)]


def failover_line(effects: list[Effect]) -> Log:
    (line,) = [e for e in effects if isinstance(e, Log) and e.event == "hub_failover"]
    return line


# -- broker_url ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "tcp://h1:5555;tcp://h2:5555",
        " tcp://h1:5555 ; tcp://h2:5555 ",
        ["tcp://h1:5555", "tcp://h2:5555"],
        ("tcp://h1:5555", " tcp://h2:5555"),
    ],
)
def test_several_hubs_are_accepted_as_a_string_or_a_list(value: object) -> None:
    """Celery's failover syntax and a list both become the ';'-joined addresses, in order."""
    conf = Settings({"broker_url": value})
    assert conf.broker_url == "tcp://h1:5555;tcp://h2:5555"
    assert hub_addresses(conf.broker_url) == ("tcp://h1:5555", "tcp://h2:5555")


def test_one_hub_stays_one_address() -> None:
    """A single address is kept as it is: one hub, no failover."""
    assert hub_addresses(Settings({"broker_url": "ipc:///tmp/h"}).broker_url) == ("ipc:///tmp/h",)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("tcp://h1:5555;", "empty hub address"),
        ("tcp://h1:5555;;tcp://h2:5555", "empty hub address"),
        ([], "lists no hub address"),
        ("tcp://h1:5555;redis://h2:6379", "unsupported broker URL 'redis://h2:6379'"),
        ("tcp://h1:5555;tcp://h2", "malformed broker URL 'tcp://h2'"),
        ("tcp://h1:5555,tcp://h2:5555", "malformed"),
        ("tcp://h1:5555;tcp://h1:5555", "more than once"),
    ],
)
def test_bad_lists_are_refused_naming_the_bad_address(value: object, match: str) -> None:
    """An empty, foreign, malformed or repeated address is refused, named in the message."""
    with pytest.raises(UnsupportedBrokerError, match=match):
        Settings({"broker_url": value})


def test_a_list_item_that_is_not_a_string_is_refused() -> None:
    """Each address of a list must be a string."""
    with pytest.raises(ImproperlyConfigured, match="must be a string, got 5555"):
        Settings({"broker_url": ["tcp://h1:5555", 5555]})


def test_the_failover_strategy_setting() -> None:
    """round-robin by default; shuffle and a callable accepted; anything else refused."""
    assert Settings().broker_failover_strategy == "round-robin"
    assert Settings({"broker_failover_strategy": "Shuffle"}).broker_failover_strategy == "shuffle"
    assert Settings({"broker_failover_strategy": iter}).broker_failover_strategy is iter
    with pytest.raises(ImproperlyConfigured, match="'round-robin', 'shuffle' or a callable"):
        Settings({"broker_failover_strategy": "priority"})


# -- the order ----------------------------------------------------------------------------------


def test_round_robin_starts_at_the_first_and_cycles() -> None:
    """round-robin: the listed order, again and again."""
    order = failover_order(("a", "b", "c"))
    assert list(itertools.islice(order, 7)) == ["a", "b", "c", "a", "b", "c", "a"]


@given(st.integers(0, 2**32))
def test_shuffle_visits_every_hub_once_per_round(seed: int) -> None:
    """shuffle: each round is a permutation of the hubs."""
    order = failover_order(("a", "b", "c"), "shuffle", random.Random(seed))
    for _ in range(3):
        assert sorted(itertools.islice(order, 3)) == ["a", "b", "c"]


def test_shuffle_spreads_peers_over_the_hubs() -> None:
    """Peers with the shuffle strategy do not all start on the first hub."""
    starts = {next(failover_order(("a", "b", "c"), "shuffle", random.Random(i))) for i in range(50)}
    assert starts == {"a", "b", "c"}


def test_a_callable_strategy_gives_the_order_and_is_restarted() -> None:
    """A callable gets the list and returns an iterator; it starts again when it ends."""

    def last_first(addresses: list[str]) -> Iterator[str]:
        return iter(reversed(addresses))

    order = failover_order(("a", "b"), last_first)
    assert list(itertools.islice(order, 5)) == ["b", "a", "b", "a", "b"]


def test_a_callable_strategy_may_not_invent_addresses() -> None:
    """An address the list does not hold, or no address at all, is a clear error."""
    with pytest.raises(ImproperlyConfigured, match="'tcp://elsewhere:1', which broker_url"):
        next(failover_order(("a", "b"), lambda _: iter(["tcp://elsewhere:1"])))
    with pytest.raises(ImproperlyConfigured, match="no address"):
        next(failover_order(("a", "b"), lambda _: iter([])))


# -- when to move -------------------------------------------------------------------------------


def test_one_hub_never_fails_over() -> None:
    """With one address the rotation never moves (ZeroMQ reconnects to it)."""
    rotation = HubRotation(("tcp://h1:1",), heartbeat=1.0, now=T0)
    assert not rotation.due(None, T0 + 1e6)


def test_a_hub_is_lost_after_three_silent_heartbeats() -> None:
    """Silent for three heartbeats since it was last heard (or since we turned to it)."""
    rotation = HubRotation(("a", "b"), heartbeat=2.0, now=T0)
    assert not rotation.due(None, T0 + 5.9)
    assert rotation.due(None, T0 + 6.0)
    assert not rotation.due(T0 + 3.0, T0 + 8.9)
    assert rotation.due(T0 + 3.0, T0 + 9.0)
    line = rotation.advance(T0 + 3.0, T0 + 9.0)
    assert (line.event, line.fields["from"], line.fields["to"]) == ("hub_failover", "a", "b")
    assert rotation.current == "b"
    assert not rotation.due(T0 + 3.0, T0 + 14.9)  # counted from the move, not the old hub


# -- the client session -------------------------------------------------------------------------


def test_the_client_starts_on_the_first_hub_and_stays_while_it_answers() -> None:
    """round-robin starts at h1; a hub that answers every heartbeat is never left."""
    s = session()
    assert s.endpoint == "tcp://h1:5555"
    for i in range(1, 20):
        s.handle(p.Pong("hub-1", known=True), T0 + i)
        assert not any(isinstance(e, Dial) for e in s.tick(T0 + i + 0.5))
    assert s.endpoint == "tcp://h1:5555"


@given(st.lists(st.sampled_from("abcdef"), unique=True), st.sets(st.sampled_from("uvw")))
def test_failover_resends_the_unconfirmed_and_waits_again(
    confirmed: list[str], waited: set[str]
) -> None:
    """A lost hub: hub_failover, Dial the next, HELLO there, every unconfirmed publish again
    and WAIT for every result still awaited; in that order."""
    s = session()
    s.handle(p.Welcome("hub-1", 1.0), T0)
    for tid in "abcdef":
        s.publish(task(tid, reply=True))
    s.handle(p.Confirm(tuple(confirmed)), T0)
    for tid in waited:
        s.await_result(tid)
    assert not any(isinstance(e, Dial) for e in s.tick(T0 + 2.9))
    effects = s.tick(T0 + 3.0)
    line = failover_line(effects)
    assert line.fields["from"] == "tcp://h1:5555"
    assert line.fields["to"] == "tcp://h2:5555"
    assert line.fields["resending"] == 6 - len(confirmed)
    dial = next(i for i, e in enumerate(effects) if isinstance(e, Dial))
    assert effects[dial] == Dial("tcp://h2:5555")
    messages = sent(effects[dial:])
    assert isinstance(messages[0], p.Hello)
    resent = {m.tasks[0].id for m in messages if isinstance(m, p.Publish)}
    assert resent == set("abcdef") - set(confirmed)
    asked = {tid for m in messages if isinstance(m, p.Wait) for tid in m.ids}
    assert asked == waited
    assert s.endpoint == "tcp://h2:5555"
    assert not s.answering(T0 + 3.0)


def test_the_new_hubs_welcome_resends_nothing_twice() -> None:
    """After a failover the new hub's WELCOME is a first one: no second resend."""
    s = session()
    s.handle(p.Welcome("hub-1", 1.0), T0)
    s.publish(task("a"))
    s.tick(T0 + 3.0)
    assert sent(s.handle(p.Welcome("hub-2", 1.0), T0 + 3.1)) == []
    assert s.handle(p.Confirm(("a",)), T0 + 3.2)
    assert s.unconfirmed == {}


def test_a_silent_next_hub_is_left_too_and_the_rotation_comes_back() -> None:
    """No hub answering: the client moves every three heartbeats, round the list and back."""
    s = session()
    seen = [s.endpoint]
    now = T0
    for _ in range(4):
        now += 3.0
        effects = s.tick(now)
        assert any(isinstance(e, Dial) for e in effects)
        seen.append(s.endpoint)
    assert seen == [
        "tcp://h1:5555",
        "tcp://h2:5555",
        "tcp://h3:5555",
        "tcp://h1:5555",
        "tcp://h2:5555",
    ]


def test_a_nack_from_the_new_hub_is_a_real_refusal() -> None:
    """After a failover a NACK answers the copy sent there: it is reported refused."""
    s = session()
    s.publish(task("a"))
    s.tick(T0 + 3.0)
    effects = s.handle(p.Nack((p.Refusal("a", "unroutable"),)), T0 + 3.1)
    assert "publish_refused" in [e.event for e in effects if isinstance(e, Log)]
    assert s.take_refused() == [("a", "unroutable")]


# -- the worker's link and the embedded hub -----------------------------------------------------


def test_a_list_means_connect_never_embed() -> None:
    """Several hubs are standalone ones: a worker connects; 'always' embed is refused."""
    both = "tcp://127.0.0.1:5555;tcp://127.0.0.1:5557"
    assert embedded_hub_plan(both, "auto")[0] == "connect"
    assert embedded_hub_plan(both, "never")[0] == "connect"
    with pytest.raises(ImproperlyConfigured, match="lists several hubs"):
        embedded_hub_plan(both, "always")


def test_the_worker_link_moves_its_socket_to_the_next_hub() -> None:
    """HubLink: silent for three heartbeats, the DEALER is replaced by one to the next hub
    (registered in the poller in place of the old one); one address never moves."""
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        link = HubLink(
            ctx, "tcp://127.0.0.1:1;tcp://127.0.0.1:2", b"w1", None, heartbeat=1.0, now=T0
        )
        poller = zmq.Poller()
        poller.register(link.sock, zmq.POLLIN)
        old = link.sock
        assert link.endpoint == "tcp://127.0.0.1:1"
        assert not link.moved(poller, T0 + 1.0, T0 + 3.9)
        assert link.moved(poller, T0 + 1.0, T0 + 4.0)
        assert link.endpoint == "tcp://127.0.0.1:2"
        assert old.closed
        assert link.sock is not old
        assert [s for s, _ in poller.sockets] == [link.sock]
        assert link.sock.getsockopt(zmq.LAST_ENDPOINT) == b"tcp://127.0.0.1:2"
        single = HubLink(ctx, "tcp://127.0.0.1:1", b"w2", None, heartbeat=1.0, now=T0)
        assert not single.moved(zmq.Poller(), None, T0 + 1e6)
    finally:
        ctx.destroy(linger=0)


# -- where a peer starts ------------------------------------------------------------------------


def test_the_probe_takes_the_first_hub_in_order_at_once() -> None:
    """The strategy's first hub answering ends the probe on the spot."""
    probe = HubProbe(("a", "b", "c"), started=T0, timeout=4.0)
    probe.heard("a", T0 + 0.01)
    assert probe.done(T0 + 0.01)
    assert probe.choice() == "a"


def test_the_probe_waits_a_grace_for_earlier_hubs() -> None:
    """Another hub answering first waits PROBE_GRACE for those before it in the order."""
    probe = HubProbe(("a", "b", "c"), started=T0, timeout=4.0)
    probe.heard("c", T0 + 0.01)
    assert not probe.done(T0 + 0.01 + PROBE_GRACE / 2)
    probe.heard("b", T0 + 0.02)
    assert probe.done(T0 + 0.01 + PROBE_GRACE)
    assert probe.choice() == "b"


def test_a_probe_nobody_answers_ends_at_its_timeout() -> None:
    """No answer: done at the deadline, no choice (the peer starts at the strategy's first)."""
    probe = HubProbe(("a", "b"), started=T0, timeout=4.0)
    assert not probe.done(T0 + 3.9)
    assert probe.done(T0 + 4.0)
    assert probe.choice() is None


def test_a_session_started_at_the_probed_hub_fails_over_from_there() -> None:
    """start_at moves the session (and its rotation) to the hub that answered."""
    s = session()
    s.start_at("tcp://h2:5555", T0 + 1.0)
    assert s.endpoint == "tcp://h2:5555"
    assert not any(isinstance(e, Dial) for e in s.tick(T0 + 3.5))
    effects = s.tick(T0 + 4.0)
    assert Dial("tcp://h3:5555") in effects


def test_events_come_from_every_hub_of_the_list() -> None:
    """An events receiver subscribes to each hub's PUB socket (broker port + 1)."""
    assert hub_events_urls("tcp://h1:5555;tcp://h2:6000") == "tcp://h1:5556;tcp://h2:6001"
    assert hub_events_urls("tcp://h1:5555") == "tcp://h1:5556"


def test_a_hub_needs_bind_when_broker_url_lists_several() -> None:
    """`celeriac hub` with a list and no --bind says a hub listens at one address."""
    conf = Settings({"broker_url": "tcp://127.0.0.1:1;tcp://127.0.0.1:3"})
    with pytest.raises(ImproperlyConfigured, match="give it with --bind"):
        run_hub(conf)
