"""A worker node's connection to its hub: a ZeroMQ loop around a :class:`WorkerSession`.

How it works
------------
The protocol logic (credit, slots and prefetch, gated deliveries, give-back, heartbeats,
re-HELLO, drain, merged outcomes) is the sans-IO
:class:`~celeriac.transport.session.WorkerSession`; this thread only moves bytes and performs
its effects. It owns the node's DEALER socket to the hub and polls it beside the node's inbox
doorbell (:mod:`.inbox`: the slots queue their outcomes there, already encoded in their own
threads, and ring only when the queue was empty). Each turn it polls both: a message from
the hub is decoded and handed to ``session.handle``; outcomes taken from the inbox go to
``session.outcome_frames`` and leave merged (one ``DONE`` for many); then ``session.tick``.
A slot whose outcome finds the loop asleep and the inbox empty sends it itself, under the
loop's lock (:meth:`HubConnection._direct`): one wake-up less per task when the worker is idle
(issue 18), as the client's caller sends its own publish when nothing is in flight.
Effects become sends (here) and, in :mod:`.connection_effects`, slot hand-offs (what a turn
gave a slot, in one put into its actor's inbox before the loop waits again), log lines,
events, remote control answers and revokes. The session lives on the node: when this thread
crashes it rebuilds the connection (new socket and identity) under :data:`CONNECTION_POLICY`
(:func:`run_connection`), and the same session says HELLO with what it still holds.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgpack
import zmq

from celeriac._log import get_logger
from celeriac.actors.restart import Escalate, RestartPolicy, RestartTracker
from celeriac.exceptions import FrameError
from celeriac.transport import protocol as p
from celeriac.transport import session as s
from celeriac.transport.curve import CurveClient
from celeriac.transport.multipart import NOBLOCK, readable, recv_frames, send_frames

from . import inbox
from .connection_effects import ConnectionEffects
from .keyed import KEYED_TAG
from .link import HubLink, new_identity
from .worker_control import WorkerView

if TYPE_CHECKING:
    from .worker import WorkerNode

__all__ = ["CONNECTION_POLICY", "HubConnection", "run_connection", "worker_session"]

_log = get_logger("celeriac.worker")

#: The connection thread may crash this many times within CONNECTION_PERIOD seconds.
CONNECTION_RESTARTS = 3
CONNECTION_PERIOD = 10.0
#: Its restart policy: that intensity, and a jittered backoff before each rebuild.
CONNECTION_POLICY = RestartPolicy(CONNECTION_RESTARTS, CONNECTION_PERIOD, backoff=(0.05, 1.0))


def batched(effects: list[s.Effect], more: list[s.Effect]) -> bool:
    """Add an outcome's effects to those of the inbox turn's earlier outcomes (performed
    together, one pass for the lot); True when they must be performed now: a :class:`~s.Recall`
    withdraws deliveries the session still counts as waiting in their slot, and the next
    outcome of that slot would start one of them (then a recall taking it would leave the slot
    counted busy with a task it never runs)."""
    effects += more
    return s.Recall in map(type, more)  # (a look in C: it runs for every outcome)


def _busy(session: s.WorkerSession, index: int) -> bool:
    """Whether the worker has more work than slot ``index``'s task: another slot runs one, or
    deliveries wait (in the prefetch buffer, or behind it in its slot)."""
    return len(session.busy) > 1 or bool(session.buffer) or bool(session.queued.get(index))


class _DescriptorPoller(zmq.Poller):
    """A poller that polls a ZeroMQ socket's descriptor (``ZMQ_FD``) in its place: ``zmq_poll``
    on the socket itself would touch it from the loop's thread while a slot sends on it
    (:meth:`HubConnection._direct`). The descriptor is edge-triggered: the loop reads the
    socket every turn and checks ``ZMQ_EVENTS`` before it sleeps."""

    def register(self, socket: Any, flags: int = zmq.POLLIN) -> None:
        """Register ``socket`` (its descriptor) or a plain descriptor."""
        super().register(socket.FD if isinstance(socket, zmq.Socket) else socket, flags)

    def unregister(self, socket: Any) -> None:
        """Unregister ``socket`` (its descriptor) or a plain descriptor."""
        super().unregister(socket.FD if isinstance(socket, zmq.Socket) else socket)


def worker_session(node: WorkerNode) -> s.WorkerSession:
    """The node's session with its hub (one for the node's life, across connections)."""
    conf = node.conf
    tasks = node.app.tasks

    def tracked(name: str) -> bool | None:  # read at each start: tasks may come later
        option = getattr(tasks.get(name), "track_started", None)
        return None if option is None else bool(option)

    config = s.WorkerConfig(
        node=node.peer_name,
        endpoint=node.hub_endpoint,
        queues=tuple(node.queues),
        slots=node.concurrency,
        prefetch=node.prefetch,
        heartbeat=float(conf.broker_heartbeat),
        giveback=float(conf.worker_prefetch_giveback),
        pid=os.getpid(),
        on_lost="requeue" if conf.task_reject_on_worker_lost else "fail",
        declare=node.declarations,
        track_started=bool(conf.task_track_started),
        tracked=tracked,
        extended=bool(conf.result_extended),
        control=node.hostname if node.prefork_child is None else None,  # else: the parent's
        # A prefork child's parent times and signals the task it was told starts: none waits.
        run_ahead=node.pool.run_ahead if node.pool and node.prefork_child is None else 0,
        # A prefork child keeps the fixed prefetch: a hard time limit kills it with what it
        # holds, and each of those counts a delivery (broker_max_deliveries).
        prefetch_window=float(conf.worker_prefetch_window) if node.prefork_child is None else 0.0,
    )
    return s.WorkerSession(config, node.app.clock.monotonic(), gate=node.types.offer)


def run_connection(node: WorkerNode) -> None:
    """The connection thread, supervised in place by the one restart policy.

    A connection that crashes (a bug, never a bad frame: those are logged and dropped) is
    rebuilt, after the policy's jittered backoff, with a new socket and identity but the same
    inbox and session (the task ledger), so its HELLO tells the hub what is still
    running here. More than :data:`CONNECTION_RESTARTS` crashes within
    :data:`CONNECTION_PERIOD` seconds escalate: the node stops with exit code 1 and says why.
    """
    restarts = RestartTracker(CONNECTION_POLICY, clock=node.app.clock)
    session = worker_session(node)
    session.accepting = node._accepting
    node.session = session
    while True:
        conn = HubConnection(node, session)
        try:
            conn.serve()
            return
        except Exception as exc:  # supervised: restart or escalate
            _log.exception("connection_failed", error=f"{type(exc).__name__}: {exc}")
            decision = restarts.failed("connection")
            if isinstance(decision, Escalate):
                node._escalate(
                    f"the connection to the hub crashed {decision.restarts} times within "
                    f"{decision.period:g}s; last: {type(exc).__name__}: {exc}"
                )
                return
            node.connection_restarts += 1
            _log.warning(
                "connection_restarted",
                restarts=node.connection_restarts,
                delay=round(decision.delay, 3),
            )
        finally:
            conn.close()
        node._shutdown.wait(decision.delay)  # the backoff; a shutdown cuts it short


class HubConnection(ConnectionEffects):
    """The loop of the connection thread (owns the DEALER; reads the node's inbox when rung)."""

    def __init__(self, node: WorkerNode, session: s.WorkerSession) -> None:
        self.node = node
        self.session = session
        self.identity = new_identity(node.peer_name)
        self.doorbell = node.inbox.fd
        curve = CurveClient.from_settings(node.conf)
        self.link = HubLink.for_node(node, self.identity, curve)  # failover: runtime/link.py
        self.sock = self.link.sock
        self.clock = node.app.clock
        self.view = WorkerView(node, self)
        self.stopped = False
        self.runs = {}
        #: Whether this thread has sent on the socket since ZMQ_EVENTS last said nothing waits
        #: (a send may take the descriptor's signal: the loop then looks before it sleeps).
        self._sent = True
        #: Held by the loop but while it sleeps: the socket's and the session's lock.
        self._turn = threading.Lock()
        self._perform_one: dict[type, Callable[[Any], None]] = {
            s.Send: self._do_send,
            s.SendEncoded: self._do_send_encoded,
            **self.effect_handlers(),
        }

    def close(self) -> None:
        self.hand_over()  # the session counts them handed: a crashed loop's too
        self.sock.close(0)

    def send(self, message: p.Message) -> None:
        """Send ``message`` to the hub (after the outcomes drained before it)."""
        self.perform(self.session.send(message))

    def perform(self, effects: Iterable[s.Effect]) -> None:
        """Do what the session asks, in order."""
        perform_one = self._perform_one
        for effect in effects:
            perform_one[type(effect)](effect)

    # -- the loop ----------------------------------------------------------------------------------

    def serve(self) -> None:
        """Say HELLO, then serve until the session stops (a drained or cold shutdown)."""
        node, session, clock = self.node, self.session, self.clock
        poller = _DescriptorPoller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.doorbell, zmq.POLLIN)
        turn = self._turn
        turn.acquire()  # released only to sleep: a slot may then send its outcome (_direct)
        try:
            self.perform(session.connect(clock.monotonic()))
            timeout = float(node.conf.worker_shutdown_timeout)
            node.inbox.direct = self._direct
            pending = False
            while not self.stopped:
                handed = self.hand_over(wake=False)
                turn.release()
                try:
                    # The slots' wake-up last, without the GIL: a slot woken while this thread
                    # held the GIL or the turn slept again on them (issue 18).
                    if handed:
                        assert node.pool is not None
                        node.pool.wake_handed()
                    events = dict(poller.poll(0 if pending else 100))
                finally:
                    turn.acquire()
                if self.doorbell in events:
                    self._outcomes()
                self._incoming()  # every turn: the socket's descriptor is edge-triggered
                now = clock.monotonic()
                if node._shutdown.is_set():
                    cold = node._cold.is_set()
                    if session.drain_deadline is None or (cold and not session.cold):
                        self.perform(session.shutdown(now, timeout, cold=cold))
                if self.link.moved(poller, session.watch.last_heard, now):  # hub lost: the next
                    self.sock = self.link.sock
                    self.perform(session.connect(now))
                draining = session.drain_deadline is not None
                pool = node.pool
                worked = pool.worked() if pool is not None and session.window.due(now) else None
                self.perform(session.tick(now, node.keyed.running() if draining else 0, worked))
                if not self.stopped:
                    self.view.flush_events()
                # Our sends may have taken the signal of a message that came meanwhile; with
                # none since _incoming found nothing, the descriptor is armed (one look less).
                pending = self._sent and readable(self.sock)
            self.hand_over()
        finally:
            node.inbox.direct = None
            turn.release()
        # Let the BYE leave before the socket closes (linger is 0).
        with contextlib.suppress(zmq.ZMQError):
            self.sock.setsockopt(zmq.LINGER, 500)

    def _direct(self, index: int, frames: list[bytes]) -> bool:
        """Send slot ``index``'s encoded outcome from the slot's own thread (a ``DONE`` without
        waking this one, issue 18) if the loop sleeps, nothing waits in the inbox before it and
        the worker is otherwise idle (else False: the slot queues it). Under load the outcomes
        go through the loop, which merges those that come while it wakes (one ``DONE`` for
        several: fewer messages for the hub). Node events go the usual way."""
        session = self.session
        # Under load another slot is busy (_busy): said without the lock, which then decides.
        if self.node.send_events or len(session.busy) > 1:
            return False
        if not self._turn.acquire(blocking=False):
            return False
        try:
            if self.stopped or not self.node.inbox.empty() or _busy(session, index):
                return False
            effects = session.outcome_frames(index, frames, self.clock.monotonic())
            if self.node.on_task_end is None:
                # The DONE first, the bookkeeping (Finished) after it: the session's own sends
                # drain the outcomes before them, so the hub still sees them in order. Not
                # with an on_task_end (a prefork child's "finished" must precede its DONE).
                self.perform(session.take_outcomes())
                self.perform(effects)
            else:
                self.perform(effects)
                self.perform(session.take_outcomes())
            self.hand_over()
            if readable(self.sock):  # our send may have taken the loop's signal: wake it
                self.node.inbox.ring()
            return True
        finally:
            self._turn.release()

    def _incoming(self) -> None:
        sock = self.sock
        self.session.report_received = self.node.send_events  # the only reader of Received
        # Read while ZMQ_EVENTS says a message waits: a receive that finds nothing raises
        # zmq.Again, built in Python (2.4 µs against 0.9 µs for the look, transport/multipart.py).
        while readable(sock):
            frames = recv_frames(sock, NOBLOCK)
            try:
                message = p.decode(frames)
            except FrameError as exc:
                self.perform(self.session.watch.heard(self.clock.monotonic()))
                _log.warning("bad_message_from_hub", error=str(exc))
                continue
            self._received(message)
        self._sent = False  # nothing waits now: see serve()
        self.perform(self.session.received_all())

    def _received(self, message: p.Message) -> None:
        self.perform(self.session.handle(message, self.clock.monotonic()))

    def _outcomes(self) -> None:
        """The doorbell rang: clear it, then take every message queued (runtime/inbox.py)."""
        session, node = self.session, self.node
        node.inbox.rung()
        take_all = node.inbox.take_all
        now = self.clock.monotonic()  # the turn's: the outcomes came together
        # The effects of consecutive outcomes, performed together (one pass for the lot); all
        # else performs them first, as the events of an outcome do (they read the node).
        effects: list[s.Effect] = []
        while taken := take_all():  # (again: what came meanwhile joins this turn)
            for item in taken:
                if isinstance(item, tuple) and not node.send_events:  # a slot's outcome
                    index, frames = item
                    if batched(effects, session.outcome_frames(index, frames, now)):
                        self.perform(effects)
                        effects = []
                    continue
                self.perform(effects)
                effects = []
                self._other(item, now)
        effects += session.take_outcomes()
        self.perform(effects)

    def _other(self, item: inbox.Queued, now: float) -> None:
        """An inbox message but a plain outcome: from the node's threads, a slot's death, or an
        outcome with its events."""
        session, node = self.session, self.node
        if isinstance(item, tuple):  # an outcome, with its events
            index, frames = item
            done = session.busy.get(index)
            if done is not None:
                self.view.finished(done, frames, node.started_at.get(index))
                self.view.flush_events()  # before the DONE: the hub's own event comes after
            self.perform(session.outcome_frames(index, frames, now))
            return
        if not item[0]:
            self._local(item[1], item[2:])
            return
        assert item[1] == inbox.LOST  # a slot's index before anything else: only LOST
        assert node.pool is not None
        self.hand_over()  # what this turn gave the dead actor: dropped with it
        index = int.from_bytes(item[0], "big")
        if node.pool.replaced(index):  # else an earlier LOST of this slot covered it
            self.perform(session.lost(index, now))

    def _local(self, kind: bytes, frames: list[bytes]) -> None:
        """Something from the node's own threads: a message to forward, a confirmation to ask,
        a control command, a gated delivery its type released."""
        if kind in (inbox.SEND, KEYED_TAG):  # as they are, after the outcomes drained before
            self.perform(self.session.take_outcomes())
            self._sent = True
            send_frames(self.sock, frames)
        elif kind == inbox.SETTLE:  # after the outcome of a task cut short (WorkerNode.cut_short)
            self.perform(self.session.settle(frames[0].decode()))
        elif kind == inbox.CTL:
            command, arguments, ask = msgpack.unpackb(frames[0], raw=False)
            answer = self.node.panel.handle(self.view, command, arguments)
            if ask is not None and self.node.on_control_answer is not None:
                self.node.on_control_answer(ask, answer)
        else:
            self.perform(self.session.released(frames[0].decode(), self.clock.monotonic()))

    # -- effects -----------------------------------------------------------------------------------

    def _do_send(self, effect: s.Send) -> None:
        if type(effect.message) is p.Start:
            self.view.flush_events()  # the task-started event first: the hub's copy comes after
        self._sent = True
        send_frames(self.sock, p.encode(effect.message))

    def _do_send_encoded(self, effect: s.SendEncoded) -> None:
        self._sent = True
        send_frames(self.sock, effect.frames)
