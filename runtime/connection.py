"""A worker node's connection to its hub: the connection thread (see :mod:`.worker`).

How it works
------------
One thread owns the node's DEALER socket to the hub and a PULL socket the slots push their
outcomes to. Each turn it polls both: messages from the hub (deliveries, control, revokes) are
decoded and handed to a free slot, the task-type gates or the control panel; outcomes drained
from the slots leave merged (one ``DONE`` for many, see :func:`celeriac._wire.next_batch`)
after any credit debt is paid. It sends HELLO (with the deliveries it still holds) to every
new hub incarnation, heartbeats, and hands deliveries back on shutdown. The node rebuilds the
connection under :data:`~.worker.CONNECTION_POLICY` if this thread crashes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgpack
import zmq

from celeriac import signals
from celeriac._log import get_logger
from celeriac._wire_control2 import reply_messages
from celeriac.actors.task_actor import Delivery
from celeriac.exceptions import FrameError
from celeriac.transport import protocol as p
from celeriac.transport.curve import CurveClient
from celeriac.transport.multipart import NOBLOCK, recv_frames, send_frames

from .gated import GatedDeliveries
from .keyed import KEYED_TAG
from .link import HubLink, new_identity
from .liveness import HubWatch
from .worker_control import WorkerView

if TYPE_CHECKING:
    from .worker import WorkerNode

__all__ = ["EXIT_ABANDONED", "HubConnection", "abandoned"]

_log = get_logger("celeriac.worker")

#: The exit code of a node that stopped with tasks still running (a cold shutdown, or the
#: shutdown timeout): the hub gets them back and delivers them again.
EXIT_ABANDONED = 1


def abandoned(node: Any, tags: list[str]) -> None:
    """Say that a stopping node leaves ``tags`` unfinished (the hub redelivers them: its BYE
    hands them back), and make its exit code :data:`EXIT_ABANDONED`."""
    _log.warning(
        "tasks_abandoned",
        count=len(tags),
        ids=tags[:20],
        hint="the hub delivers them again (at-least-once)",
    )
    node.exit_code = node.exit_code or EXIT_ABANDONED


class HubConnection:
    """The loop of the connection thread (owns the DEALER; reads outcomes from ``pull``).

    ``previous`` is the connection this one replaces after a crash: its ledger (free and busy
    slots, prefetched deliveries) carries over.
    """

    def __init__(
        self, node: WorkerNode, pull: zmq.Socket[Any], previous: HubConnection | None
    ) -> None:
        self.node = node
        self.identity = new_identity(node.peer_name)
        self.pull = pull
        curve = CurveClient.from_settings(node.conf)
        self.link = HubLink.for_node(node, self.identity, curve)  # failover: runtime/link.py
        self.sock = self.link.sock
        #: Outcomes drained from the slots this turn, sent together (see :meth:`_outcomes`).
        self.pending_outcomes: deque[list[bytes]] = deque()
        self.free = list(range(node.concurrency))
        self.busy: dict[int, str] = {}
        self.buffer: deque[Delivery] = deque()
        #: When the buffer last started waiting behind busy slots (None: not waiting).
        self.stalled_since: float | None = None
        #: Credit held back after giving buffered deliveries back; returned when a slot frees.
        self.withheld = 0
        self.giveback = float(node.conf.worker_prefetch_giveback)
        self.track_started = bool(node.conf.task_track_started)
        self.extended = bool(node.conf.result_extended)
        self.hub_id: str | None = None
        self.heartbeat = float(node.conf.broker_heartbeat)
        self.clock = node.app.clock
        #: Whether the hub is there, said once when it goes and once when it is back.
        self.watch = HubWatch(node.hub_endpoint, self.clock.monotonic(), self.heartbeat)
        #: When the last HELLO went out without a WELCOME yet (None: none pending).
        self.hello_sent: float | None = None
        #: Deliveries of task types with a rate limit or a cap (see runtime/gated.py).
        self.gated = GatedDeliveries()
        self.credit_due = 0
        self.view = WorkerView(node, self)
        if previous is not None:
            self.free, self.busy, self.buffer = previous.free, previous.busy, previous.buffer
            self.gated = previous.gated
            self.hub_id = previous.hub_id  # the node is already ready: no second worker_ready

    def close(self) -> None:
        self.sock.close(0)

    def send(self, message: p.Message) -> None:
        self._send_outcomes()  # outcomes drained earlier go first: the hub sees our order
        send_frames(self.sock, p.encode(message))

    def _send_outcomes(self) -> None:
        """Send the outcomes collected by :meth:`_outcomes`, merged (one DONE for many)."""
        pending = self.pending_outcomes
        while pending:
            send_frames(self.sock, p.next_batch(pending))

    def give_back(self, deliveries: Iterable[Delivery], credit: int = 0) -> None:
        """Hand deliveries back to the hub for another consumer (``REJ``, requeue)."""
        rejections = tuple(p.Rejection(d.task.id, d.tag, credit=credit) for d in deliveries)
        if rejections:
            self.send(p.Reject(rejections))

    def hello(self) -> None:
        node = self.node
        self.withheld = 0  # the credit announced here is the whole truth for the hub
        self.gated.hello()
        self.credit_due = 0
        self.hello_sent = self.clock.monotonic()
        held = len(self.busy) + len(self.buffer) + self.gated.holding_credit()
        credit = 0 if not node.accepting else max(0, node.prefetch - held)
        self.send(
            p.Hello(
                role="worker",
                node=node.peer_name,
                pid=os.getpid(),
                on_lost="requeue" if node.conf.task_reject_on_worker_lost else "fail",
                queues=tuple(node.queues) if node.accepting else (),
                declare=node.declarations,
                credit=credit,
                inflight=(
                    *self.busy.values(),
                    *(d.delivery_tag for d in self.buffer),
                    *self.gated.tags(),
                ),
            )
        )

    def serve(self) -> None:
        node = self.node
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.pull, zmq.POLLIN)
        self.hello()
        clock = node.app.clock
        next_ping = clock.monotonic() + self.heartbeat
        draining = False
        drain_deadline = 0.0
        while True:
            events = dict(poller.poll(100))
            if self.pull in events:
                self._outcomes()
            if self.sock in events:
                self._incoming()
            if node._shutdown.is_set() and not draining:
                draining = True
                drain_deadline = clock.monotonic() + float(node.conf.worker_shutdown_timeout)
                self._begin_drain()
            if draining and self.busy and clock.monotonic() > drain_deadline:
                _log.warning(
                    "shutdown_timeout",
                    running=len(self.busy),
                    hint="running tasks are handed back to the hub for redelivery",
                )
                node._cold.set()
            if draining and (not (self.busy or node.keyed.running()) or node._cold.is_set()):
                if self.busy:
                    abandoned(node, list(self.busy.values()))
                break
            now = clock.monotonic()
            self.watch.tick(now, running=len(self.busy))
            if self.link.moved(poller, self.watch.last_heard, now):  # hub lost: the next one
                self.sock = self.link.sock
                self.hello()
            if self.stalled_since is not None and now - self.stalled_since > self.giveback:
                self._give_back()
            if now >= next_ping:
                node.keyed.tick(self.send)
                next_ping = now + self.heartbeat
                self.send(p.Ping(inflight=len(self.busy)))
                signals.heartbeat_sent.send(sender=node)
                if node.prefork_child is None:  # a prefork node's parent speaks for it
                    self.view.heartbeat()
            self.view.flush_events()
        self.send(p.Bye())
        # Let the BYE leave before the socket closes (linger is 0).
        with contextlib.suppress(zmq.ZMQError):
            self.sock.setsockopt(zmq.LINGER, 500)

    def _give_back(self) -> None:
        """Prefetched deliveries waited too long behind busy slots: let another worker have them.

        This keeps prefetch (no hub round trip between two short tasks) without Celery's
        complaint that a long task holds back the tasks prefetched behind it.
        """
        n = len(self.buffer)
        self.give_back(self.buffer)
        self.buffer.clear()
        self.withheld += n
        self.stalled_since = None
        _log.debug("prefetch_given_back", count=n)

    def _begin_drain(self) -> None:
        node = self.node
        node.accepting = False
        self.send(p.Consume(()))
        gated = self.gated.take_unstarted()
        node.types.drain(gated)
        unstarted = [*self.buffer, *gated]
        self.buffer.clear()
        self.give_back(unstarted)
        _log.info("draining", running=len(self.busy))

    def _incoming(self) -> None:
        while True:
            try:
                frames = recv_frames(self.sock, NOBLOCK)
            except zmq.Again:
                if self.credit_due and self.node.accepting:
                    self.send(p.Credit(self.credit_due))
                self.credit_due = 0
                return
            self.watch.heard(self.clock.monotonic())
            try:
                msg = p.decode(frames)
            except FrameError as exc:
                _log.warning("bad_message_from_hub", error=str(exc))
                continue
            if isinstance(msg, p.Deliver):
                for delivery in msg.deliveries:
                    if p.is_keyed_queue(delivery.queue):
                        self.node.keyed.deliver(delivery, self.send)
                    else:
                        self._on_task(delivery)
            elif not self.node.keyed.handle(msg):
                self._on_control(msg)

    def _on_task(self, delivery: Delivery) -> None:
        if not self.node.accepting:
            self.give_back((delivery,))
            return
        if self.node.send_events:
            self.view.received(delivery)
        if self.node.types.offer(delivery):  # its type has a rate limit or a cap: it decides
            self.credit_due += self.gated.offer(delivery.delivery_tag, delivery)
            return
        if self.free:
            self._dispatch(self.free.pop(), delivery)
        else:
            self.buffer.append(delivery)
            if self.stalled_since is None:
                self.stalled_since = self.node.app.clock.monotonic()

    def _dispatch(self, index: int, delivery: Delivery) -> None:
        self.busy[index] = delivery.delivery_tag
        if self.node.send_events:
            self.view.started(delivery)
        tracked = getattr(self.node.app.tasks.get(delivery.task.task), "track_started", None)
        if self.track_started if tracked is None else tracked:  # the task's option wins
            self.view.flush_events()  # before START: the hub's own copy comes after
            self.send(p.Start((p.TaskRef(delivery.task.id, delivery.tag),)))
        if self.extended:  # result_extended: the hub keeps the request beside the result
            self.send(p.TaskState(delivery.task.id, delivery.tag, extended=True))
        self.node._deliveries[index] = delivery
        self.node.started_at[index] = time.time()
        if self.node.on_task_start is not None:
            self.node.on_task_start(delivery)
        assert self.node.pool is not None
        self.node.pool.submit(index, delivery)

    def _outcomes(self) -> None:
        while True:
            try:
                frames = recv_frames(self.pull, NOBLOCK)
            except zmq.Again:
                self._send_outcomes()
                return
            if not frames[0]:
                if frames[1] == b"SEND":
                    self._send_outcomes()  # keep the order the slots sent in
                    send_frames(self.sock, frames[2:])
                elif frames[1] == b"CTL":
                    command, arguments, ask = msgpack.unpackb(frames[2], raw=False)
                    answer = self.node.panel.handle(self.view, command, arguments)
                    if ask is not None and self.node.on_control_answer is not None:
                        self.node.on_control_answer(ask, answer)
                elif frames[1] == KEYED_TAG:  # a keyed call's state and outcome, as they are
                    self._send_outcomes()
                    send_frames(self.sock, frames[2:])
                else:
                    self._released(frames[2].decode())
                continue
            index = int.from_bytes(frames[0], "big")
            if frames[1] == b"LOST":
                lost = self.node._deliveries.get(index)
                if index in self.busy and lost is not None:
                    _log.error("slot_lost_task", slot=index, task_id=lost.task.id)
                    self.give_back((lost,), credit=self.gated.credit_back())
                else:
                    continue
            else:
                done = self.node._deliveries.get(index)
                if self.node.send_events and done is not None and index in self.busy:
                    self.view.finished(done, frames[1:], self.node.started_at.get(index))
                    self.view.flush_events()  # before the DONE: the hub's own event comes after
                self.pending_outcomes.append(self._pay_debt(frames[1:]))
            self._slot_done(index)

    def _slot_done(self, index: int) -> None:
        """Slot ``index`` has finished its delivery: tell its type, give the slot more work."""
        finished = self.node._deliveries.get(index) if index in self.busy else None
        if finished is not None:
            self.node.processed[finished.task.task] += 1
            if self.node.on_task_end is not None:
                self.node.on_task_end(finished)
            self.node.types.finished(finished)
        self.busy.pop(index, None)
        if self.gated.ready and self.node.accepting:
            self._dispatch(index, self.gated.ready.popleft())
        elif self.buffer and self.node.accepting:
            self._dispatch(index, self.buffer.popleft())
            self.stalled_since = self.node.app.clock.monotonic() if self.buffer else None
        else:
            self.free.append(index)
            if self.withheld and self.node.accepting:
                self.send(p.Credit(self.withheld))
                self.withheld = 0

    def _released(self, tag: str) -> None:
        """A task type's actor released a gated delivery: run it in a free slot, or next."""
        delivery = self.gated.release(tag)
        if delivery is None:
            return  # handed back meanwhile (shutdown)
        if self.free and self.node.accepting:
            self._dispatch(self.free.pop(), delivery)
        else:
            self.gated.ready.append(delivery)

    def _pay_debt(self, frames: list[bytes]) -> list[bytes]:
        """A DONE from a slot returning one credit returns none while a debt is owed."""
        if not self.gated.debt:
            return frames
        message = p.decode(frames)  # our own slot's message: well-formed
        if isinstance(message, p.Done) and message.results[0].credit:
            result = dataclasses.replace(message.results[0], credit=self.gated.credit_back())
            return p.encode(p.Done((result,)))
        if isinstance(message, p.Reject) and message.rejections[0].credit:
            rejection = dataclasses.replace(message.rejections[0], credit=self.gated.credit_back())
            return p.encode(p.Reject((rejection,)))
        return frames

    def _on_welcome(self, msg: p.Welcome) -> None:
        first, previous = self.hub_id is None, self.hub_id
        self.hub_id = msg.hub
        self.hello_sent = None
        if msg.node is not None and msg.node != self.node.peer_name:
            _log.warning(
                "node_name_taken",
                node=self.node.peer_name,
                known_as=msg.node,
                hint="another live worker has this name: give each worker its own -n NAME",
            )
        if self.node.prefork_child is None:  # a prefork node's parent answers for it
            self.send(p.ControlJoin(msg.node or self.node.hostname))
        if first:
            _log.info("hub_connected", endpoint=self.node.hub_endpoint, hub=self.hub_id)
            _log.info(
                "worker_ready" if self.node.prefork_child is None else "child_ready",
                node=self.node.peer_name,
                queues=self.node.queues,
                concurrency=self.node.concurrency,
                pool=self.node.pool_name,
            )
            self.node.ready.set()
            self.node._signal(signals.worker_ready, sender=self.node)
        elif msg.hub != previous:
            _log.info("hub_reconnected", hub=self.hub_id, previous=previous)

    def _answer_control(self, msg: p.ControlCommand) -> None:
        """Run a control command; its answer (in pieces if long) goes back to the hub."""
        reply = self.node.panel.handle(self.view, msg.command, dict(msg.arguments))
        if msg.reply:
            for message in reply_messages(msg.rid, self.node.hostname, reply):
                self.send(message)

    def _on_control(self, msg: p.Message) -> None:
        if isinstance(msg, p.Welcome):
            self._on_welcome(msg)
        elif (isinstance(msg, p.Pong) and (msg.known is False or msg.hub != self.hub_id)) or (
            isinstance(msg, p.Error) and msg.code == "hello"
        ):
            # PINGs queued while the hub was away all come back at once: one HELLO answers them.
            sent = self.hello_sent
            if sent is None or self.clock.monotonic() - sent > self.heartbeat:
                self.hello()
        elif isinstance(msg, p.Ping):
            self.send(p.Pong())
        elif isinstance(msg, p.ControlCommand):
            self._answer_control(msg)
        elif isinstance(msg, p.RevokeHeld):
            self.node.revoke_held(msg)
        elif isinstance(msg, p.Error):
            _log.error("hub_refused_us", reason=msg.reason)
