"""Peers and liveness: HELLO, heartbeats, probes, peers lost or leaving (their deliveries go
back or fail), and distrust of a peer that sent a malformed message."""

from __future__ import annotations

from typing import Any

from celeriac import states
from celeriac._log import get_logger

from .. import protocol as p
from .control2 import worker_event
from .model import (
    DISTRUST_LIMIT,
    REPROBE_AFTER,
    Peer,
    PeerFault,
)
from .visibility import Visibility

_log = get_logger("celeriac.hub")


class Peers(Visibility):
    """Peers joining, answering, leaving, lost or distrusted."""

    def peer_unreachable(self, identity: bytes) -> None:
        """The server could not route to ``identity``: its connection is gone."""
        peer = self._peers.get(identity)
        if peer is not None:
            self._drop_peer(peer, "connection lost")
        for ids in self._waiters.values():
            ids.discard(identity)

    def probe_peers(self) -> None:
        """A connection closed somewhere: ping the workers so the dead one shows itself.

        And again :data:`REPROBE_AFTER` seconds later (from :meth:`tick`): the first ping may
        still be accepted for a peer whose connection is being torn down.
        """
        self._ping_workers()
        now = self.clock.monotonic()
        self._reprobes = [now + delay for delay in REPROBE_AFTER]

    def _ping_workers(self) -> None:
        for peer in self._peers.values():
            if peer.role == "worker":
                self._send(peer.identity, p.Ping(hub=self.hub_id))

    def _on_hello(self, peer: Peer | None, identity: bytes, msg: p.Hello) -> None:
        if peer is None:
            node = self._unique_node(msg.node) if msg.role == "worker" else msg.node
            peer = Peer(identity, msg.role, node, self.clock.monotonic())
            self._peers[identity] = peer
        peer.role = msg.role
        peer.fail_on_lost = msg.on_lost == "fail"
        peer.pid = msg.pid
        peer.results_confirm = msg.results_confirm
        if msg.declare is not None:
            self._declare(identity, msg.declare)
        peer.credit = msg.credit
        for mid in msg.inflight:
            held = self._messages.get(mid)
            if held is not None and held.holder is None:
                held.holder = identity
                peer.inflight.add(mid)
        self._cap(peer)
        self._set_queues(peer, list(msg.queues))
        _log.info(
            "peer_joined", node=peer.node, role=peer.role, queues=peer.queues, credit=peer.credit
        )
        if peer.role == "worker":
            event = worker_event(peer, self.heartbeat, queues=tuple(peer.queues))
            self._event(b"worker-online", event)
        self._send(identity, p.Welcome(self.hub_id, self.heartbeat, peer.node))
        self._pump_peer(peer)

    def _unique_node(self, node: str) -> str:
        """``node``, or ``node#N`` if a live worker already goes by that name (events and
        control could not tell them apart); said in a warning here and at the worker."""
        taken = {peer.node for peer in self._peers.values() if peer.role == "worker"}
        if node not in taken:
            return node
        n = 2
        while f"{node}#{n}" in taken:
            n += 1
        unique = f"{node}#{n}"[: p.MAX_NAME]
        _log.warning(
            "duplicate_node_name",
            node=node,
            known_as=unique,
            hint="another live worker has this name: give each worker its own -n NAME",
        )
        return unique

    def _on_ping(self, peer: Peer | None, identity: bytes, msg: p.Ping) -> None:
        self._send(identity, p.Pong(self.hub_id, known=peer is not None))

    def _on_pong(self, peer: Peer | None, identity: bytes, msg: p.Pong) -> None:
        """A worker answered our probe: it is alive (last_seen was updated)."""

    def _on_bye(self, peer: Peer | None, identity: bytes, msg: p.Bye) -> None:
        if peer is not None:
            self._drop_peer(peer, "said goodbye", log=False)

    def _on_hub_only(self, peer: Peer | None, identity: bytes, msg: Any) -> None:
        """A command only the hub sends (WELCOME, TASK, RES...): the peer is confused."""
        raise PeerFault("a command only the hub sends")

    def _drop_peer(self, peer: Peer, reason: str, *, log: bool = True) -> None:
        self._peers.pop(peer.identity, None)
        self._forget_waits(peer.identity)
        if peer.role == "worker":
            event = worker_event(peer, self.heartbeat, reason=reason[: p.MAX_TEXT])
            self._event(b"worker-offline", event)
        self._set_queues(peer, [])
        held = [self._messages[m] for m in peer.inflight if m in self._messages]
        # Pushed to the front one by one: newest first, so the oldest ends up at the head.
        held.sort(key=lambda m: m.seq, reverse=True)
        peer.inflight.clear()
        if log or held:
            self.counters["peers_lost"] += 1 if log else 0
            # A client that vanished while holding nothing lost nothing: not worth a warning.
            loud = bool(held) or peer.role == "worker"
            (_log.warning if loud else _log.info)(
                "peer_lost" if log else "peer_left",
                node=peer.node,
                reason=reason,
                requeued=len(held) if not peer.fail_on_lost or not log else 0,
                **({"failed": len(held)} if peer.fail_on_lost and log and held else {}),
            )
        for msg in held:
            msg.holder = None
            if not log:  # BYE: handed back on purpose (cold shutdown), not a loss
                self._requeue(msg)
                continue
            msg.lost += 1
            if msg.lost >= self.max_deliveries:
                self._dead_letter(msg, peer.node)
            elif peer.fail_on_lost:
                self.counters["lost_failed"] += 1
                self._finish_by_hub(
                    msg,
                    states.FAILURE,
                    "WorkerLostError",
                    f"worker {peer.node} was lost ({reason}) while running the task; not "
                    "redelivered because task_reject_on_worker_lost is False",
                )
            else:
                self._requeue(msg)

    def _distrust(self, identity: bytes, reason: str) -> None:
        self.counters["bad_frames"] += 1
        _log.warning("bad_frame_dropped", peer=identity[:64], reason=reason[:300])
        self._distrusted[identity] = None
        if len(self._distrusted) > DISTRUST_LIMIT:
            self._distrusted.popitem(last=False)
        peer = self._peers.get(identity)
        if peer is not None:
            self._drop_peer(peer, f"sent a malformed message: {reason[:200]}")
        self._send(identity, p.Error("distrusted", reason[:300]))
