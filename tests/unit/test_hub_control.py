"""The hub's side of remote control, on the sans-IO state: forwarding, relaying, missing
nodes, hub answers (queues, purge, scheduled, revoked, bindings) and events."""

from __future__ import annotations

from typing import Any

import msgpack

from celeriac._clock import FakeClock
from celeriac._wire_control import MAX_REPLY_BYTES
from celeriac._wire_control2 import join_reply, reply_messages, split_body
from celeriac.runtime.gather import Gather
from celeriac.transport import protocol as p
from celeriac.transport.hubstate import HubState
from celeriac.transport.store_memory import MemoryStore

W1, W2, C = b"w1", b"w2", b"client"


def make_hub() -> HubState:
    hub = HubState(MemoryStore(), FakeClock(), hub_id="hub")
    queue = p.QueueDecl("celery")
    send(hub, C, p.Hello("client", "c", declare=p.Declare((), (queue,))))
    for ident, name in ((W1, "w1"), (W2, "w2")):
        send(hub, ident, p.Hello("worker", name, credit=0, queues=("celery",)))
        send(hub, ident, p.ControlJoin(name))
    hub.outbox.clear()
    return hub


def send(hub: HubState, identity: bytes, message: p.Message) -> None:
    hub.handle(identity, p.encode(message))


def sent(hub: HubState) -> list[tuple[bytes, Any]]:
    out = [(frames[0], p.decode(frames[1:])) for frames in hub.outbox]
    hub.outbox.clear()
    return out


def body(message: Any) -> Any:
    return msgpack.unpackb(message.body, raw=False, strict_map_key=False)


def test_a_request_goes_to_every_node_and_replies_come_back_under_the_clients_rid() -> None:
    """CTLSENT names the nodes first; each node gets CTLCMD; its CTLREP is relayed."""
    hub = make_hub()
    send(hub, C, p.ControlRequest("r1", "ping"))
    out = sent(hub)
    assert out[0] == (C, p.ControlSent("r1", ("w1", "w2")))
    commands = dict(out[1:])
    assert set(commands) == {W1, W2}
    assert all(isinstance(m, p.ControlCommand) and m.command == "ping" for m in commands.values())
    rid = commands[W1].rid
    send(hub, W1, p.ControlReply(rid, "spoofed", msgpack.packb({"ok": "pong"})))
    [(to, reply)] = sent(hub)
    assert to == C
    assert (reply.rid, reply.node) == ("r1", "w1")  # the name the hub knows
    assert body(reply) == {"ok": "pong"}
    send(hub, W1, p.ControlReply(rid, "w1", b"\x01"))  # a second answer is dropped
    send(hub, C, p.ControlReply(rid, "c", b"\x01"))  # so is one from a peer not asked
    assert sent(hub) == []
    send(hub, W2, p.ControlReply(rid, "w2", b"\x02"))
    assert [m.node for _, m in sent(hub)] == ["w2"]
    send(hub, W2, p.ControlReply(rid, "w2", b"\x02"))  # the request is complete: forgotten
    assert sent(hub) == []


def test_destination_unknown_names_and_lost_nodes_are_reported_not_sent_to() -> None:
    """Only the named live nodes get the command; others are listed as unknown."""
    hub = make_hub()
    hub.peer_unreachable(W2)
    send(hub, C, p.ControlRequest("r2", "stats", destination=("w1", "w2", "ghost")))
    out = sent(hub)
    assert out[0] == (C, p.ControlSent("r2", ("w1",), ("w2", "ghost")))
    assert [ident for ident, _ in out[1:]] == [W1]


def test_a_second_node_with_the_same_name_is_made_unique() -> None:
    """Two live peers joining as one name are told apart (name#2)."""
    hub = make_hub()
    send(hub, b"w3", p.Hello("worker", "w3"))
    send(hub, b"w3", p.ControlJoin("w1"))
    hub.outbox.clear()
    send(hub, C, p.ControlRequest("r", "ping"))
    assert sent(hub)[0][1].nodes == ("w1", "w2", "w1#2")


def test_hub_queues_purge_scheduled_and_revoked_are_answered_by_the_hub() -> None:
    """Queue lengths count ready and delayed; scheduled lists ETA tasks per node; purge
    removes waiting messages; revoked lists the hub's revoked ids."""
    hub = make_hub()
    now = hub.clock.time()
    send(hub, C, p.Publish((p.TaskMessage("a", "t", queue="celery"),)))
    send(hub, C, p.Publish((p.TaskMessage("b", "t", queue="celery", eta=now + 60),)))
    send(hub, C, p.Revoke(("gone",)))
    hub.outbox.clear()
    send(hub, C, p.ControlRequest("q", "hub_queues"))
    sent_, reply = sent(hub)
    assert sent_[1] == p.ControlSent("q", ("hub",))
    assert body(reply[1])["celery"] == {
        "ready": 1,
        "delayed": 1,
        "unacked": 0,
        "consumers": ["w1", "w2"],
    }
    send(hub, C, p.ControlRequest("s", "scheduled", destination=("w1",)))
    _, (_, scheduled) = sent(hub)
    [entry] = body(scheduled)
    assert entry["request"]["id"] == "b"
    assert entry["eta"] == now + 60
    send(hub, C, p.ControlRequest("v", "revoked", destination=("w2",)))
    assert body(sent(hub)[1][1]) == ["gone"]
    send(hub, C, p.ControlRequest("p", "purge", {"queues": ["celery"]}))
    assert body(sent(hub)[1][1]) == {"purged": 2, "queues": {"celery": 2}}
    send(hub, C, p.ControlRequest("q2", "hub_queues"))
    assert body(sent(hub)[1][1])["celery"]["ready"] == 0
    send(hub, W1, p.Credit(1))  # the purged messages are never delivered
    assert not [m for _, m in sent(hub) if isinstance(m, p.Deliver)]


def test_hub_revoked_names_the_tasks_a_revoke_removed_once() -> None:
    """hub_revoked: the ids among those asked that a revoke removed at the hub (queued or
    delayed, never delivered), with their task and queue, each reported once; hostile
    arguments get an empty answer."""
    hub = make_hub()
    now = hub.clock.time()
    send(hub, C, p.Publish((p.TaskMessage("a", "t.a", queue="celery"),)))
    send(hub, C, p.Publish((p.TaskMessage("b", "t.b", queue="celery", eta=now + 60),)))
    send(hub, C, p.Revoke(("a", "b", "never-sent")))
    hub.outbox.clear()
    send(hub, C, p.ControlRequest("r", "hub_revoked", {"ids": ["a", "b", "never-sent", 7]}))
    assert body(sent(hub)[1][1]) == [
        {"id": "a", "name": "t.a", "queue": "celery"},
        {"id": "b", "name": "t.b", "queue": "celery"},
    ]
    send(hub, C, p.ControlRequest("r2", "hub_revoked", {"ids": ["a"]}))
    assert body(sent(hub)[1][1]) == []
    for hostile in ({"ids": "a"}, {}, {"ids": None}):
        send(hub, C, p.ControlRequest("r3", "hub_revoked", hostile))
        assert body(sent(hub)[1][1]) == []


def test_events_from_peers_are_published_with_their_type_as_topic() -> None:
    """EVENTS: each event goes to PUB under its type, with a timestamp."""
    hub = make_hub()
    hub.events.clear()
    send(hub, W1, p.EventBatch(({"type": "task-received", "uuid": "x"},)))
    [(topic, payload)] = hub.events
    event = msgpack.unpackb(payload)
    assert topic == b"task-received"
    assert event["uuid"] == "x"
    assert "timestamp" in event


def test_a_control_command_from_a_peer_is_a_confused_peer() -> None:
    """CTLCMD and CTLSENT are the hub's to send: a peer sending one is distrusted."""
    hub = make_hub()
    send(hub, W1, p.ControlCommand("x", "ping"))
    assert any(isinstance(m, p.Error) and m.code == "distrusted" for _, m in sent(hub))


def test_long_replies_come_whole_in_pieces_under_the_header_limit() -> None:
    """A reply too long for one header travels as CTLPART pieces and a final CTLREP, each
    under the limit; the hub relays them in order and the requester joins them: nothing of
    ``revoked`` is lost past ~1,500 ids (the first pass cut it silently)."""
    big = [f"id-{i:08d}" for i in range(20_000)]
    messages = reply_messages("r", "w1", big)
    assert len(messages) > 1
    assert isinstance(messages[-1], p.ControlReply)
    assert all(isinstance(m, p.ControlReplyPart) for m in messages[:-1])
    assert all(len(m.body) <= MAX_REPLY_BYTES for m in messages)
    assert msgpack.unpackb(join_reply([m.body for m in messages[:-1]], messages[-1].body)) == big
    hub = make_hub()
    for i in range(0, len(big), 2000):  # one REVOKE header holds a few thousand ids
        send(hub, C, p.Revoke(tuple(big[i : i + 2000])))
    hub.outbox.clear()
    send(hub, C, p.ControlRequest("v", "revoked", destination=("w1",)))
    out = [m for _, m in sent(hub)]
    gather = Gather(None)
    for message in out:
        assert len(p.encode(message)[1]) < 64 * 1024
        gather.arrived(message)
    assert sorted(gather.replies["w1"]) == sorted(big)


def test_a_node_s_long_reply_is_relayed_part_by_part() -> None:
    """The hub relays a node's CTLPART pieces to the requester under its rid, then the
    final CTLREP; a part from a node not asked is refused."""
    hub = make_hub()
    send(hub, C, p.ControlRequest("q", "conf", destination=("w1",)))
    rid = next(m.rid for _, m in sent(hub) if isinstance(m, p.ControlCommand))
    value = {"setting": "v" * 150_000}
    send(hub, W2, p.ControlReplyPart(rid, "w2", b"junk"))
    assert sent(hub) == []
    gather = Gather(None)
    for message in reply_messages(rid, "w1", value):
        send(hub, W1, message)
    for ident, message in sent(hub):
        assert ident == C
        assert message.rid == "q"
        gather.arrived(message)
    assert gather.replies == {"w1": value}


def test_a_reply_over_the_total_limit_says_it_was_cut() -> None:
    """Past MAX_REPLY_TOTAL an answer is replaced by an error marked ``truncated`` (a list
    keeps its first entries under ``partial``): a cut is never silent."""
    big = [f"id-{i:08d}" for i in range(5_000)]
    pieces = split_body(big, piece=10_000, total=20_000)
    answer = msgpack.unpackb(b"".join(pieces))
    assert answer["truncated"] is True
    assert answer["total"] == len(big)
    assert 0 < len(answer["partial"]) < len(big)
    assert answer["partial"] == big[: len(answer["partial"])]
    assert msgpack.unpackb(b"".join(split_body({"x": "y" * 30_000}, total=20_000)))["truncated"]
