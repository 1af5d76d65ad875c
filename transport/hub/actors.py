"""Keyed actors at the hub: placement, one message at a time per key, activation and state.

How it works
------------
A call to a keyed actor is a task message whose queue names the instance,
``celeriac.actor:<class>#<key>`` (:mod:`celeriac._protocol_keyed`). Such a queue is never
routed through exchanges: the publish is stored like any task (durable, confirmed, duplicates
dropped), then kept in the key's own FIFO (:class:`KeySlot`) instead of a ready queue.

Placement
    A worker hosts a class by consuming ``celeriac.actor:<class>``. The first message of a key
    places it on the hosting worker with the fewest keys placed (ties: round robin), so keys
    spread across workers; the placement holds while that worker lives. Before the first
    delivery to a new placement the hub sends ``KEYED_ACTIVATE`` with the last state stored
    for the key (a *virtual* actor: created on its first message, wherever it is placed).
One at a time, in order
    A key has at most one message in flight. The next is sent when the worker's ``DONE`` for the
    current one arrives, so calls run in the order the hub received them, each after the one
    before has finished. Keyed deliveries use no credit (they do not run in task slots).
Saved state
    A class with ``save_state``/``load_state`` has its worker send ``KEYED_SAVE`` after every
    call, before the call's ``DONE``; the hub stores it (in the store's meta table, committed
    with the same group commit as the acknowledgement), and only from the worker the key is
    placed on.
Idle and lost workers
    A worker whose instance was idle for ``actor_idle_timeout`` says ``KEYED_IDLE``; if nothing
    is queued or in flight for the key, the hub forgets the placement and answers
    ``KEYED_STOP`` (otherwise the message on its way keeps the instance alive). When a worker is
    lost, its keys lose their placement and the message it held goes back to the front of its
    key's FIFO (the usual redelivery): the next placement activates the key elsewhere, with its
    stored state.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field

from celeriac import states
from celeriac._log import get_logger

from .. import protocol as p
from .model import Msg, Peer
from .peers import Peers

__all__ = ["Actors", "KeySlot"]

_log = get_logger("celeriac.hub")

#: The store's meta key of one actor instance's saved state.
STATE_META_PREFIX = "keyed-state:"


@dataclass(slots=True)
class KeySlot:
    """One actor key at the hub: its queued messages, placement and the one in flight."""

    queue: str
    host: str
    pending: deque[str] = field(default_factory=deque)
    holder: bytes | None = None
    active: bool = False
    busy: str | None = None


class Actors(Peers):
    """Placement and ordered delivery of keyed actor messages; see the module docstring."""

    _keyed_rr: int = 0

    @functools.cached_property
    def _keys(self) -> dict[str, KeySlot]:
        return {}

    @functools.cached_property
    def _placed(self) -> dict[bytes, set[str]]:
        """The keys placed on each worker."""
        return {}

    def _route(self, task: p.TaskMessage) -> list[str]:
        if task.exchange is None and p.is_keyed_queue(task.queue):
            return [task.queue]
        return super()._route(task)

    def _make_ready(self, msg: Msg, *, front: bool = False) -> None:
        if not p.is_keyed_queue(msg.queue):
            super()._make_ready(msg, front=front)
            return
        slot = self._keys.get(msg.queue)
        if slot is None:
            cls_name, _ = p.split_keyed_queue(msg.queue)
            slot = self._keys[msg.queue] = KeySlot(msg.queue, p.host_queue(cls_name))
        if not msg.queued:
            msg.queued = True
            if front:
                slot.pending.appendleft(msg.id)
            else:
                slot.pending.append(msg.id)
        self._pump_key(slot)

    def _release(self, msg: Msg) -> None:
        super()._release(msg)
        slot = self._keys.get(msg.queue) if p.is_keyed_queue(msg.queue) else None
        if slot is None:
            return
        if slot.busy == msg.id:
            slot.busy = None
        if slot.busy is None and msg.id not in self._messages:
            self._pump_key(slot)  # finished (else it is requeued next, keeping the order)

    def _drop_peer(self, peer: Peer, reason: str, *, log: bool = True) -> None:
        for queue in self._placed.pop(peer.identity, set()):
            slot = self._keys.get(queue)
            if slot is not None and not slot.pending and slot.busy is None:
                del self._keys[queue]  # idle: nothing to remember (the state is stored)
            elif slot is not None:
                slot.holder, slot.active, slot.busy = None, False, None
        super()._drop_peer(peer, reason, log=log)
        for slot in [s for s in self._keys.values() if s.holder is None and s.pending]:
            self._pump_key(slot)

    def _set_queues(self, peer: Peer, queues: list[str]) -> None:
        super()._set_queues(peer, queues)
        hosts = {q for q in peer.queues if q.startswith(p.KEYED_PREFIX)}
        if hosts:  # a new host: keys waiting for one may be placed now
            for slot in [s for s in self._keys.values() if s.holder is None and s.host in hosts]:
                self._pump_key(slot)

    def _consumers_of(self, queue: str) -> int:
        if p.is_keyed_queue(queue):  # the workers hosting the class
            return len(self._consumers.get(p.host_queue(p.split_keyed_queue(queue)[0]), ()))
        return super()._consumers_of(queue)

    # -- delivery ------------------------------------------------------------------------------

    def _pump_key(self, slot: KeySlot) -> None:
        """Send the key's next message if none is in flight and a host is there."""
        now = self.clock.time()
        while slot.busy is None and slot.pending:
            msg = self._messages.get(slot.pending[0])
            if msg is None or not msg.queued or msg.holder is not None:
                slot.pending.popleft()
                if msg is not None:
                    msg.queued = False
                continue
            peer = self._place(slot)
            if peer is None:
                return  # no worker hosts this class yet: the messages wait, stored
            slot.pending.popleft()
            msg.queued = False
            if msg.expires is not None and now >= msg.expires:
                self.counters["expired"] += 1
                self._finish_by_hub(msg, states.REVOKED, "TaskRevokedError", "expired")
                continue
            self._deliver_keyed(slot, msg, peer)

    def _deliver_keyed(self, slot: KeySlot, msg: Msg, peer: Peer) -> None:
        if not slot.active:
            state = self.store.get_meta(STATE_META_PREFIX + slot.queue)
            self._send(peer.identity, p.KeyedActivate(slot.queue, state))
            slot.active = True
        msg.deliveries += 1
        msg.delivered_at = self.clock.monotonic()
        msg.holder = peer.identity
        peer.inflight.add(msg.id)
        slot.busy = msg.id
        self.counters["delivered"] += 1
        delivery = p.Delivery(msg.task, msg.queue, msg.deliveries, msg.id if msg.copy else None)
        self._send(peer.identity, p.Deliver((delivery,)))

    def _place(self, slot: KeySlot) -> Peer | None:
        """The worker the key lives on: its placement, or the least loaded host (spread)."""
        if slot.holder is not None:
            peer = self._peers.get(slot.holder)
            if peer is not None and slot.host in peer.queues:
                return peer
            self._placed.get(slot.holder, set()).discard(slot.queue)  # it stopped hosting
        hosts = [self._peers[i] for i in self._consumers.get(slot.host, ()) if i in self._peers]
        if not hosts:
            return None
        self._keyed_rr += 1
        n = len(hosts)
        rotated = hosts[self._keyed_rr % n :] + hosts[: self._keyed_rr % n]
        peer = min(rotated, key=lambda q: len(self._placed.get(q.identity, ())))
        slot.holder, slot.active = peer.identity, False
        self._placed.setdefault(peer.identity, set()).add(slot.queue)
        _log.debug("actor_placed", key=slot.queue, node=peer.node)
        return peer

    # -- commands ------------------------------------------------------------------------------

    def _on_keyed_save(self, peer: Peer | None, identity: bytes, msg: p.KeyedSave) -> None:
        slot = self._keys.get(msg.queue)
        if slot is None or slot.holder != identity:
            self.counters["refused"] += 1  # a worker the key is no longer placed on
            return
        self.store.set_meta(STATE_META_PREFIX + msg.queue, msg.state)

    def _on_keyed_idle(self, peer: Peer | None, identity: bytes, msg: p.KeyedIdle) -> None:
        slot = self._keys.get(msg.queue)
        if slot is not None and (slot.holder != identity or slot.busy or slot.pending):
            return  # in use: the message on its way keeps the instance alive
        if slot is not None:
            del self._keys[msg.queue]
            self._placed.get(identity, set()).discard(msg.queue)
        self._send(identity, p.KeyedStop(msg.queue))

    def keyed_statistics(self) -> dict[str, object]:
        """Keys known, placed per worker, and messages waiting for a key."""
        nodes = {i: q.node for i, q in self._peers.items()}
        return {
            "keys": len(self._keys),
            "placed": {nodes.get(i, "?"): len(k) for i, k in self._placed.items()},
            "waiting": sum(len(s.pending) for s in self._keys.values()),
        }
