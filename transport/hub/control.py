"""Remote control through the hub: commands to nodes, replies back, hub-side inspection.

How it works
------------
A node that answers control commands says so with ``CTLJOIN`` (a thread worker for itself, a
prefork parent for its whole node); the hub keeps ``node name -> identity`` (a name taken by
another live peer becomes ``name#2``, as for workers). A client's ``CTLREQ`` names a command,
its arguments and the nodes it is for (None: all). The hub answers at once with ``CTLSENT``
(the nodes it forwarded the command to, and the requested names it does not know), then sends
``CTLCMD`` to each node over the ROUTER socket, never over PUB (PUB drops). Each ``CTLREP`` a
node sends back is relayed to the requester under the requester's ``rid``; the requester
decides how long to wait and reports the nodes that did not answer as missing.

Some commands the hub answers itself from its own state:

* for the whole cluster (reply from node ``hub``): ``hub_queues`` (ready, delayed and unacked
  messages per queue, and its consumers), ``hub_bindings``, ``hub_dead_letters``, ``hub_stats``
  and ``purge``
  (remove the messages waiting in queues, ready or delayed; not those a worker holds);
* for each addressed node (a reply per node, made by the hub): ``scheduled`` (messages with an
  ETA waiting at the hub in the queues that node consumes; celeriac holds delayed messages at
  the hub, not in worker memory) and ``revoked`` (the hub's durable revoked set).

``EVENTS`` from any peer are published on the PUB socket, one frame group per event with its
type as the topic (Celery's event maps). Long answers travel in pieces, and the task events a
worker sent itself stop the hub's own copies: see :mod:`.control2`.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, Final

import msgpack

from celeriac._log import get_logger

from .. import protocol as p
from .control2 import LongReplies
from .model import Msg, Peer

__all__ = ["HUB_COMMANDS", "HUB_NODE", "PER_NODE_COMMANDS", "RemoteControl"]

_log = get_logger("celeriac.hub")

#: The node name of replies the hub makes about itself.
HUB_NODE: Final = "hub"
#: Commands the hub answers once, about itself.
HUB_COMMANDS: Final = frozenset(
    {"hub_queues", "hub_bindings", "hub_dead_letters", "hub_stats", "hub_revoked", "purge"}
)
#: Commands the hub answers on behalf of each addressed node.
PER_NODE_COMMANDS: Final = frozenset({"scheduled", "revoked"})
#: Requests whose replies are still relayed (oldest forgotten first).
PENDING_LIMIT: Final = 10_000


#: A request still collecting replies: requester, its rid, identity -> node name yet to answer.
_Pending = tuple[bytes, str, dict[bytes, str]]


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=repr)  # type: ignore[no-any-return]


class RemoteControl(LongReplies):
    """The control channel's hub side; see the module docstring."""

    def _control(self) -> tuple[dict[str, bytes], OrderedDict[str, _Pending]]:
        """(node name -> identity, hub rid -> who asked and who has yet to answer), lazily."""
        nodes: dict[str, bytes] | None = self.__dict__.get("_control_nodes")
        if nodes is None:
            nodes = self.__dict__["_control_nodes"] = {}
            self.__dict__["_control_pending"] = OrderedDict()
            self.__dict__["_control_rids"] = itertools.count(1)
        return nodes, self.__dict__["_control_pending"]

    def _live_nodes(self) -> dict[str, bytes]:
        nodes, _ = self._control()
        for name in [n for n, ident in nodes.items() if ident not in self._peers]:
            del nodes[name]
        return nodes

    def _on_control_join(self, peer: Peer | None, identity: bytes, msg: p.ControlJoin) -> None:
        nodes = self._live_nodes()
        for name in [n for n, ident in nodes.items() if ident == identity]:
            del nodes[name]
        name, n = msg.node, 2
        while name in nodes:
            name, n = f"{msg.node}#{n}"[: p.MAX_NAME], n + 1
        nodes[name] = identity
        _log.debug("control_joined", node=name)

    def _on_control_request(
        self, peer: Peer | None, identity: bytes, msg: p.ControlRequest
    ) -> None:
        if msg.command in HUB_COMMANDS:
            self._send(identity, p.ControlSent(msg.rid, (HUB_NODE,)))
            if msg.command == "hub_revoked":
                answer = self._hub_revoked(dict(msg.arguments))
            else:
                answer = self._hub_answer(msg.command, dict(msg.arguments))
            self._send_reply(identity, msg.rid, HUB_NODE, answer)
            return
        nodes = self._live_nodes()
        wanted = list(nodes) if msg.destination is None else list(msg.destination)
        targets = [n for n in wanted if n in nodes]
        unknown = tuple(n for n in wanted if n not in nodes)
        self._send(identity, p.ControlSent(msg.rid, tuple(targets), unknown))
        if msg.command in PER_NODE_COMMANDS:
            for name in targets:
                self._send_reply(identity, msg.rid, name, self._node_answer(msg.command, name))
            return
        _, pending = self._control()
        rid = f"h{next(self.__dict__['_control_rids'])}"
        if msg.reply and targets:
            pending[rid] = (identity, msg.rid, {nodes[name]: name for name in targets})
            while len(pending) > PENDING_LIMIT:
                pending.popitem(last=False)
        command = p.ControlCommand(rid, msg.command, msg.arguments, msg.reply)
        for name in targets:
            self._send(nodes[name], command)
        _log.debug("control_sent", command=msg.command, nodes=targets, unknown=list(unknown))

    def _on_control_reply(self, peer: Peer | None, identity: bytes, msg: p.ControlReply) -> None:
        _, pending = self._control()
        waiting = pending.get(msg.rid)
        if waiting is None:
            return  # late (the requester gave up long ago) or not ours to relay
        requester, rid, expected = waiting
        name = expected.pop(identity, None)
        if name is None:  # a second answer, or one from a peer not asked: dropped
            self.counters["refused"] += 1
            return
        if not expected:
            del pending[msg.rid]
        # Relayed under the name the hub knows the node by, whatever the reply says.
        self._send(requester, p.ControlReply(rid, name, msg.body))

    def _on_event_batch(self, peer: Peer | None, identity: bytes, msg: p.EventBatch) -> None:
        now = self.clock.time()
        self._remember_worker_events(msg.events)
        if not self.events_wanted:
            return
        for event in msg.events:
            out = dict(event)
            out.setdefault("timestamp", now)
            self.events.append([str(out["type"]).encode(), _pack(out)])

    # -- answers the hub makes -------------------------------------------------------------------

    def _hub_answer(self, command: str, arguments: dict[str, Any]) -> Any:
        if command == "hub_queues":
            return self._queue_lengths()
        if command == "hub_dead_letters":
            return list(self._dead_letters)
        if command == "hub_bindings":
            types = self.table.exchanges()
            return [
                {"exchange": ex, "type": types.get(ex, "direct"), "routing_key": key, "queue": q}
                for ex, key, q in self.table.bindings()
            ]
        if command == "purge":
            queues = arguments.get("queues")
            return self._purge(None if queues is None else {str(q) for q in queues})
        stats: Any = getattr(self, "statistics", dict)()
        return stats

    def _hub_revoked(self, arguments: dict[str, Any]) -> list[Any]:
        """Which of ``ids`` a revoke removed here (the revoker sends ``task_revoked`` for
        them; see :mod:`.revocations`)."""
        take = getattr(self, "_take_removed", None)
        ids = arguments.get("ids")
        if take is None or not isinstance(ids, list):
            return []
        return list(take([str(i) for i in ids]))

    def _queue_lengths(self) -> dict[str, dict[str, Any]]:
        """Per queue: ready, delayed (ETA not due) and unacked messages, and its consumers."""
        names = {peer.identity: peer.node for peer in self._peers.values()}
        out: dict[str, dict[str, Any]] = {}

        def entry(queue: str) -> dict[str, Any]:
            if queue not in out:
                consumers = [names[i] for i in self._consumers.get(queue, ()) if i in names]
                out[queue] = {"ready": 0, "delayed": 0, "unacked": 0, "consumers": consumers}
            return out[queue]

        for queue in [*self.table.queues(), *self._ready, *self._consumers]:
            entry(queue)
        for msg in self._messages.values():
            entry(msg.queue)[self._where(msg)] += 1
        return dict(sorted(out.items()))

    def _where(self, msg: Msg) -> str:
        if msg.holder is not None:
            return "unacked"
        if msg.queued:
            return "ready"
        return "delayed"

    def _purge(self, queues: set[str] | None) -> dict[str, Any]:
        """Remove every message waiting (ready or delayed) in ``queues`` (None: all)."""
        purged: dict[str, int] = {}
        for msg in list(self._messages.values()):
            if msg.holder is not None or (queues is not None and msg.queue not in queues):
                continue
            del self._messages[msg.id]
            msg.queued = False
            self.store.remove_message(msg.id)
            purged[msg.queue] = purged.get(msg.queue, 0) + 1
        total = sum(purged.values())
        _log.warning("queues_purged", count=total, queues=purged)
        return {"purged": total, "queues": purged}

    def _node_answer(self, command: str, node: str) -> Any:
        if command == "revoked":
            revoked: dict[str, float] = getattr(self, "_revoked", dict)()
            return list(revoked)
        consumed: set[str] = set()
        for peer in self._peers.values():
            if peer.node == node or peer.node.startswith(node + "/"):
                consumed.update(peer.queues)
        return [
            self._scheduled_entry(msg, node)
            for _, _, mid in sorted(self._delayed)
            if (msg := self._messages.get(mid)) is not None
            and msg.holder is None
            and not msg.queued
            and msg.queue in consumed
        ]

    def _scheduled_entry(self, msg: Msg, node: str) -> dict[str, Any]:
        task = msg.task
        return {
            "eta": msg.eta,
            "priority": msg.priority,
            "request": {
                "id": task.id,
                "name": task.task,
                "type": task.task,
                "hostname": node,
                "time_start": None,
                "acknowledged": False,
                "delivery_info": {
                    "exchange": task.exchange or "",
                    "routing_key": task.routing_key or msg.queue,
                    "priority": task.priority or 0,
                    "redelivered": msg.deliveries > 0,
                },
                "worker_pid": None,
                "body": task.body,
                "content_type": task.content_type,
            },
        }
