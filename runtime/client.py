"""The client side of an App: publishes pipelined, confirmed by the hub, results pushed back.

How it works
------------
One I/O thread owns the DEALER socket to the hub (a ZeroMQ socket must stay in one thread).
Any user thread that publishes appends the frames to a deque and wakes the I/O thread through
a pipe, at most once per I/O-thread cycle. The I/O thread sends, keeps every publish until the
hub confirms it (``CONF``: it is on disk), and resends the unconfirmed ones when it meets a new
hub incarnation (the hub drops duplicates by id). Results arrive as ``RES`` pushes: the
publisher asked for them in the publish (``reply``), or ``get()`` asked with ``WAIT``. A waiter
blocks on a :class:`threading.Event`, never in a polling loop.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final

import msgpack
import zmq

from celeriac import states
from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac._serialization import loads, normalize_accept
from celeriac.exceptions import (
    CeleriacError,
    DecodeError,
    FrameError,
    PublishError,
    SerializationError,
    TimeoutError,
)
from celeriac.result import Outcome
from celeriac.routing import declarations
from celeriac.transport import protocol as p

from .link import dealer, default_node_name, new_identity
from .liveness import explain_reply

__all__ = ["Client"]

_log = get_logger("celeriac.client")

#: Results that arrived before anyone asked for them, kept so get() needs no round trip.
UNCLAIMED_LIMIT: Final = 20_000
#: Ids this client published asking for the result (so get() need not send WAIT).
EXPECTING_LIMIT: Final = 200_000
#: Longest wait of ``AsyncResult.state`` for the hub's answer (then PENDING).
STATE_TIMEOUT: Final = 1.0
#: ``get()`` without a timeout says why it still waits this often.
STILL_WAITING_EVERY: Final = 30.0


class _Slot:
    __slots__ = ("event", "outcome")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.outcome: Outcome | None = None


class Client:
    """A connection to the hub for publishing and waiting on results (thread-safe API)."""

    def __init__(self, conf: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.conf = conf
        self.clock = clock
        self.endpoint: str = conf.broker_url
        self._accept = normalize_accept(conf.result_accept_content or conf.accept_content)
        self._heartbeat = float(conf.broker_heartbeat)
        self._identity = new_identity(default_node_name("client"))
        self._ctx: zmq.Context[Any] = zmq.Context()
        self._outq: deque[list[bytes]] = deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._wake_pending = False
        self._lock = threading.Lock()
        self._unconfirmed: dict[str, list[bytes]] = {}
        self._confirmed = threading.Condition(self._lock)
        self._refused: list[tuple[str, str]] = []
        self._slots: dict[str, _Slot] = {}
        self._unclaimed: OrderedDict[str, Outcome] = OrderedDict()
        self._expecting: OrderedDict[str, None] = OrderedDict()
        self._requests: dict[int, _Slot] = {}
        self._rids = itertools.count(1)
        self._hub_id: str | None = None
        #: When the hub last sent anything (None: never), and whether we said it is silent.
        self._last_heard: float | None = None
        self._said_silent = False
        self._declared = p.declaration(*declarations(conf))
        #: Queues this client has declared to the hub (send_task declares missing ones).
        self.declared_queues: set[str] = {q.name for q in self._declared.queues}
        self._closing = threading.Event()
        self._started = clock.monotonic()
        self._thread = threading.Thread(target=self._run, name="celeriac-client", daemon=True)
        self._thread.start()
        self._finalizer = weakref.finalize(self, os.close, self._wake_w)
        atexit.register(self._at_exit)

    # -- API for user threads --------------------------------------------------------------------

    def publish(self, message: p.TaskMessage) -> None:
        """Queue a publish; returns at once (``flush`` waits for the hub's confirmation)."""
        frames = p.encode(p.Publish((message,)))
        task_id = message.id
        with self._lock:
            self._unconfirmed[task_id] = frames
            if message.reply:
                self._expecting[task_id] = None
                if len(self._expecting) > EXPECTING_LIMIT:
                    self._expecting.popitem(last=False)
        self._submit(frames)

    def declare(self, exchanges: list[dict[str, Any]], queues: list[dict[str, Any]]) -> None:
        """Declare more exchanges and queues to the hub (again after any hub restart)."""
        more = p.declaration(exchanges, queues)
        with self._lock:
            known = self._declared
            self._declared = p.Declare(known.exchanges + more.exchanges, known.queues + more.queues)
            self.declared_queues.update(q.name for q in more.queues)
        self._submit(p.encode(more))

    def wait(self, task_id: str, timeout: float | None) -> Outcome:
        """Block until the task's result arrives; TimeoutError after ``timeout`` seconds, saying
        why (never confirmed, queued with no consumer, running on a worker...). Waiting without
        a timeout logs ``still_waiting_for_result`` with the same diagnosis every
        :data:`STILL_WAITING_EVERY` seconds, so no wait is silent."""
        slot = self._slot_for(task_id)
        if timeout is None:
            while not slot.event.wait(STILL_WAITING_EVERY):
                _log.warning("still_waiting_for_result", id=task_id, why=self.diagnose(task_id))
        elif not slot.event.wait(timeout):
            raise TimeoutError(
                f"the result of task {task_id} did not arrive in {timeout}s: "
                f"{self.diagnose(task_id)}"
            )
        assert slot.outcome is not None
        return slot.outcome

    def peek(self, task_id: str) -> Outcome | None:
        """The result if it is already here (no waiting)."""
        with self._lock:
            slot = self._slots.get(task_id)
            if slot is not None and slot.outcome is not None:
                return slot.outcome
            return self._unclaimed.get(task_id)

    def hub_answering(self) -> bool:
        """Whether the hub has answered this client lately (within three heartbeats)."""
        heard = self._last_heard
        return heard is not None and self.clock.monotonic() - heard < 3 * self._heartbeat

    def state(self, task_id: str, timeout: float | None = None) -> str:
        """The task's state as the hub knows it; PENDING at once when the hub is not answering
        (a state is a question, not a wait: it never blocks for more than ``timeout``, by
        default :data:`STATE_TIMEOUT`)."""
        reply = self._stat(task_id, STATE_TIMEOUT if timeout is None else timeout)
        return states.PENDING if reply is None else reply.state

    def diagnose(self, task_id: str) -> str:
        """Why the result of ``task_id`` has not come, in words (asks the hub)."""
        with self._lock:
            unconfirmed = task_id in self._unconfirmed
        if unconfirmed:
            return (
                f"the hub at {self.endpoint} never confirmed it: it is held in this process's "
                "memory, not yet durable (is a hub running there?)"
            )
        reply = self._stat(task_id, STATE_TIMEOUT)
        if reply is None:
            return f"the hub at {self.endpoint} is not answering"
        return explain_reply(reply)

    def _stat(self, task_id: str, timeout: float) -> p.Reply | None:
        """One STAT round trip; None if the hub is not answering or does not reply in time."""
        if not self.hub_answering():
            return None
        rid = next(self._rids)
        slot = _Slot()
        with self._lock:
            self._requests[rid] = slot
        self._submit(p.encode(p.Stat(task_id, rid)))
        if not slot.event.wait(timeout):
            with self._lock:
                self._requests.pop(rid, None)
            return None
        assert slot.outcome is not None
        reply: p.Reply = slot.outcome.value
        return reply

    def forget(self, task_id: str) -> None:
        """Ask the hub to drop a stored result."""
        with self._lock:
            self._slots.pop(task_id, None)
            self._unclaimed.pop(task_id, None)
        self._submit(p.encode(p.Forget(task_id)))

    def flush(self, timeout: float | None = None) -> None:
        """Block until every publish so far is confirmed; raise PublishError for refusals."""
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        with self._lock:
            while self._unconfirmed:
                left = None if deadline is None else deadline - self.clock.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"{len(self._unconfirmed)} publishes not confirmed by the hub at "
                        f"{self.endpoint} within {timeout}s"
                    )
                self._confirmed.wait(left if left is None else min(left, 1.0))
            refused, self._refused = self._refused, []
        if refused:
            lines = "; ".join(f"{tid}: {reason}" for tid, reason in refused[:5])
            raise PublishError(f"the hub refused {len(refused)} publish(es): {lines}")

    def close(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` for confirmations, then stop the I/O thread (saying goodbye
        to the hub). Publishes still unconfirmed then were never stored: that is logged as an
        error with their number, never dropped silently."""
        if self._closing.is_set():
            return
        try:
            self.flush(timeout)
        except TimeoutError:
            with self._lock:
                lost = len(self._unconfirmed)
            _log.error(
                "publishes_lost",
                count=lost,
                hub=self.endpoint,
                hint=f"the hub never confirmed them within {timeout}s of closing: they were "
                "never stored, so no worker will run them",
            )
        except CeleriacError as exc:
            _log.warning("publishes_refused", error=str(exc))
        self._closing.set()
        self._wake()
        self._thread.join(timeout)
        atexit.unregister(self._at_exit)
        self._finalizer()

    def _at_exit(self) -> None:
        with self._lock:
            pending = len(self._unconfirmed)
        if pending:
            _log.info("waiting_for_confirms", pending=pending, hub=self.endpoint)
        self.close(float(self.conf.broker_connection_timeout))

    # -- plumbing between threads ----------------------------------------------------------------

    def _submit(self, frames: list[bytes]) -> None:
        self._outq.append(frames)
        if not self._wake_pending:
            self._wake()

    def _wake(self) -> None:
        self._wake_pending = True
        with contextlib.suppress(OSError):  # closed: the client is shutting down
            os.write(self._wake_w, b"x")

    def _slot_for(self, task_id: str) -> _Slot:
        with self._lock:
            slot = self._slots.get(task_id)
            if slot is not None:
                return slot
            slot = self._slots[task_id] = _Slot()
            early = self._unclaimed.pop(task_id, None)
            if early is not None:
                slot.outcome = early
                slot.event.set()
                return slot
            expected = task_id in self._expecting
        if not expected:
            self._submit(p.encode(p.Wait((task_id,))))
        return slot

    # -- the I/O thread --------------------------------------------------------------------------

    def _run(self) -> None:
        sock = dealer(self._ctx, self.endpoint, self._identity)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        self._send_hello(sock)
        next_ping = self.clock.monotonic() + self._heartbeat
        try:
            while not self._closing.is_set():
                events = dict(poller.poll(int(self._heartbeat * 1000 / 2)))
                if self._wake_r in events:
                    self._drain_wake()
                self._send_queued(sock)
                if sock in events:
                    self._receive(sock)
                now = self.clock.monotonic()
                if now >= next_ping:
                    next_ping = now + self._heartbeat
                    sock.send_multipart(p.encode(p.Ping()))
                    self._check_silence(now)
            self._send_queued(sock)
            sock.send_multipart(p.encode(p.Bye()))  # a normal close, not a lost peer
            sock.setsockopt(zmq.LINGER, 200)
        finally:
            sock.close()
            os.close(self._wake_r)
            self._ctx.term()

    def _heard(self) -> None:
        self._last_heard = self.clock.monotonic()
        if self._said_silent:
            self._said_silent = False
            _log.warning("hub_answering_again", hub=self.endpoint)

    def _check_silence(self, now: float) -> None:
        """Say once (per silence) that publishes wait in memory for a hub that is not there."""
        if self._said_silent or self.hub_answering():
            return
        with self._lock:
            held = len(self._unconfirmed)
        since = self._started if self._last_heard is None else self._last_heard
        if not held or now - since < float(self.conf.broker_connection_timeout):
            return
        self._said_silent = True
        _log.warning(
            "hub_not_answering",
            hub=self.endpoint,
            held=held,
            hint=f"{held} publish(es) held in this process's memory, not yet durable; they are "
            "sent when the hub answers, and lost if this process exits first",
        )

    def _drain_wake(self) -> None:
        # Drain first, then clear the flag, then (in the caller) send the queue: a producer
        # that saw the flag still set has its frames sent by this turn; one that sees it
        # cleared writes to the pipe again. Clearing first would lose that wake-up.
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        self._wake_pending = False

    def _send_queued(self, sock: zmq.Socket[Any]) -> None:
        outq = self._outq
        send = sock.send_multipart
        while outq:
            send(outq.popleft())

    def _send_hello(self, sock: zmq.Socket[Any]) -> None:
        with self._lock:
            declared = self._declared
        sock.send_multipart(p.encode(p.Hello("client", declare=declared)))

    def _receive(self, sock: zmq.Socket[Any]) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._heard()
            try:
                msg = p.decode(frames)
            except FrameError as exc:
                _log.warning("bad_message_from_hub", error=str(exc))
                continue
            handler = self._handlers.get(type(msg))
            if handler is None:
                continue
            try:
                handler(self, sock, msg)
            except Exception:  # our bug: log it, keep the I/O thread serving
                _log.exception("client_internal_error", command=msg.COMMAND.decode())

    def _on_confirm(self, sock: zmq.Socket[Any], msg: p.Confirm) -> None:
        with self._lock:
            pop = self._unconfirmed.pop
            for tid in msg.ids:
                pop(tid, None)
            if not self._unconfirmed:
                self._confirmed.notify_all()

    def _on_nack(self, sock: zmq.Socket[Any], msg: p.Nack) -> None:
        for refusal in msg.refusals:
            self._refuse(refusal.id, refusal.reason)

    def _refuse(self, tid: str, reason: str) -> None:
        _log.warning("publish_refused", id=tid, reason=reason)
        info = p.FailureInfo(
            "PublishError", "celeriac.exceptions", (f"the hub refused task {tid}: {reason}",)
        )
        outcome = Outcome(states.REJECTED, p.failure_map(info))
        with self._lock:
            self._unconfirmed.pop(tid, None)
            self._expecting.pop(tid, None)
            self._refused.append((tid, reason))
            if not self._unconfirmed:
                self._confirmed.notify_all()
        self._deliver(tid, outcome)

    def _on_result(self, sock: zmq.Socket[Any], msg: p.Result) -> None:
        for result in msg.results:
            self._deliver(result.id, self._decode_result(result))

    def _decode_result(self, result: p.ResultMessage) -> Outcome:
        state = result.state
        if result.hub:
            return Outcome(state, msgpack.unpackb(result.body, raw=False))
        try:
            value = loads(result.body, result.content_type, self._accept)
        except (SerializationError, DecodeError) as exc:
            info = p.FailureInfo(
                type(exc).__name__, "celeriac.exceptions", (f"cannot decode the result: {exc}",)
            )
            return Outcome(states.FAILURE, p.failure_map(info))
        if state in states.EXCEPTION_STATES and isinstance(value, dict):
            return Outcome(state, value, value.get("traceback"))
        return Outcome(state, value)

    def _deliver(self, task_id: str, outcome: Outcome) -> None:
        with self._lock:
            slot = self._slots.get(task_id)
            if slot is None:
                self._unclaimed[task_id] = outcome
                if len(self._unclaimed) > UNCLAIMED_LIMIT:
                    self._unclaimed.popitem(last=False)
                return
        slot.outcome = outcome
        slot.event.set()

    def _on_reply(self, sock: zmq.Socket[Any], msg: p.Reply) -> None:
        with self._lock:
            slot = self._requests.pop(msg.rid, None) if isinstance(msg.rid, int) else None
        if slot is not None:
            slot.outcome = Outcome(states.PENDING, msg)
            slot.event.set()

    def _on_hub_seen(self, sock: zmq.Socket[Any], msg: p.Welcome | p.Pong | p.Error) -> None:
        """WELCOME, PONG or ERR: notice a new hub incarnation and catch it up."""
        if isinstance(msg, p.Error) and msg.code != "hello":
            _log.error("hub_refused", code=msg.code, reason=msg.reason)
            return
        hub = msg.hub
        unknown = isinstance(msg, p.Error) or (isinstance(msg, p.Pong) and msg.known is False)
        if hub == self._hub_id and not unknown:
            return
        welcome = isinstance(msg, p.Welcome)
        if not welcome and (unknown or self._hub_id is not None):
            self._send_hello(sock)
        first = self._hub_id is None
        self._hub_id = hub
        if first and welcome:
            return
        with self._lock:
            resend = list(self._unconfirmed.values())
            waiting = [tid for tid, s in self._slots.items() if s.outcome is None]
            self._expecting.clear()
        _log.info("hub_changed", hub=hub, resending=len(resend), waiting=len(waiting))
        for frames in resend:
            sock.send_multipart(frames)
        if waiting:
            sock.send_multipart(p.encode(p.Wait(tuple(waiting))))

    def _on_ping(self, sock: zmq.Socket[Any], msg: p.Ping) -> None:
        sock.send_multipart(p.encode(p.Pong()))

    _handlers: Final[dict[type, Callable[[Client, zmq.Socket[Any], Any], None]]] = {
        p.Confirm: _on_confirm,
        p.Nack: _on_nack,
        p.Result: _on_result,
        p.Reply: _on_reply,
        p.Welcome: _on_hub_seen,
        p.Pong: _on_hub_seen,
        p.Error: _on_hub_seen,
        p.Ping: _on_ping,
    }
