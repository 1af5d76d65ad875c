"""The client side of an App: publishes pipelined, confirmed by the hub, results pushed back.

How it works
------------
The protocol logic is :class:`~celeriac.transport.session.ClientSession` (sans-IO: confirms,
resend to a new hub incarnation, waits, NACKs, STAT, hub liveness); this module is the ZeroMQ
loop around it and the thread-safe API. One I/O thread serves the DEALER socket to the hub.
Any user thread that publishes asks the session (under a lock), appends the frames it returns
to a deque and wakes the I/O thread through a pipe, at most once per I/O-thread cycle. The I/O
thread feeds the session every message from the hub and a tick each turn, and performs the
effects: frames to send, waiters to wake, lines to log. A waiter blocks on a
:class:`threading.Event`, never in a polling loop: results, states and other questions to the
hub are :mod:`.client_waits`.

A publish made while nothing is in flight (no publish unconfirmed, nothing queued: the
sequential ``delay().get()``) is sent by the publishing thread itself, which saves the wake-up
of the I/O thread on the round trip (issue 18, ~50 µs of ~1 ms). A ZeroMQ socket is not
thread-safe, but may be used by several threads in turn with a full memory barrier between
them: the socket lock ``_io`` is that barrier. The I/O thread holds it for its whole turn and
releases it only to sleep; a publisher takes it only if it is free (never waiting for a turn),
sends without blocking (else it queues as usual) and, because its send may have consumed the
socket's wake-up signal, wakes the I/O thread when the socket is readable. The I/O thread
therefore polls the socket's ``ZMQ_FD`` (a plain descriptor, edge-triggered) rather than the
socket, receives until the socket is empty every turn the socket was used or signalled in,
and checks ``ZMQ_EVENTS`` before it sleeps if it sent (``_armed``, :mod:`.client_leader`).
Publishes in a burst still queue behind the first and leave merged (see
``protocol.next_batch``). The I/O thread wakes the waiters it resolved once its turn is over and
the socket lock is free, so the woken caller's next publish finds the socket free. A
``get()`` that finds the socket free serves it itself until its result comes, while the I/O
thread rests (:mod:`.client_leader`): the sequential round trip then wakes no other thread.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, Final

import zmq
from zmq.backend import Socket as _Backend

from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac._serialization import normalize_accept
from celeriac.exceptions import CeleriacError, FrameError, TimeoutError
from celeriac.routing import declarations
from celeriac.transport import protocol as p
from celeriac.transport import session as s
from celeriac.transport.curve import CurveClient
from celeriac.transport.multipart import NOBLOCK, recv_frames, send_frames

from .client_leader import REST_MS, ClientLeader
from .client_publish import ClientPublish
from .client_waits import ClientWaits, Slot, outcome_of
from .gather import Gathers, Replies
from .link import dealer, default_node_name, new_identity, probe_hubs

__all__ = ["Client"]

_log = get_logger("celeriac.client")

# A plain int and the backend's getsockopt: the enum-based sugar costs ~1 µs a call.
_get = _Backend.get
_FD: Final = int(zmq.FD)


class Client(ClientLeader, ClientPublish, ClientWaits):
    """A connection to the hub for publishing and waiting on results (thread-safe API)."""

    def __init__(self, conf: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.conf = conf
        self.clock = clock
        self._accept = normalize_accept(conf.result_accept_content or conf.accept_content)
        self._heartbeat = float(conf.broker_heartbeat)
        self._identity = new_identity(default_node_name("client"))
        self._curve = CurveClient.from_settings(conf)  # checked here, not in the I/O thread
        self._ctx: zmq.Context[Any] = zmq.Context()
        self._outq: deque[list[bytes]] = deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._wake_pending = False
        self._lock = threading.Lock()
        self._confirmed = threading.Condition(self._lock)
        #: The socket's lock (see the module docstring); taken before ``_lock``, never after.
        self._io = threading.Lock()
        #: The socket may take a direct send: HELLO has left, the client is not closing.
        self._ready = False
        #: Waiters the I/O thread woke during its turn, set once the turn is over (_wake_waiter).
        self._woken: list[threading.Event] = []
        self._session = s.ClientSession(
            endpoint=conf.broker_url,
            declare=p.declaration(*declarations(conf)),
            heartbeat=self._heartbeat,
            connect_timeout=float(conf.broker_connection_timeout),
            now=clock.monotonic(),
            failover_strategy=conf.broker_failover_strategy,
            max_unconfirmed=int(conf.broker_max_unconfirmed),
            max_unconfirmed_bytes=int(conf.broker_max_unconfirmed_bytes),
        )
        #: A failover asked for by the session: the address to dial (the I/O thread's).
        self._dial_to: str | None = None
        self._sock: zmq.Socket[Any]  # opened by the I/O thread (_run)
        self._sock_fd = -1  # its ZMQ_FD
        self._poller = zmq.Poller()
        self._init_leader()
        self._slots: dict[str, Slot] = {}
        self._arrived: OrderedDict[str, None] = OrderedDict()
        self._gathers = Gathers()
        self._requests: dict[int, Slot] = {}
        #: Queues this client has declared to the hub (send_task declares missing ones).
        self.declared_queues: set[str] = {q.name for q in self._session.declared.queues}
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="celeriac-client", daemon=True)
        self._thread.start()
        self._finalizer = weakref.finalize(self, os.close, self._wake_w)
        atexit.register(self._at_exit)

    # -- API for user threads --------------------------------------------------------------------

    def declare(self, exchanges: list[dict[str, Any]], queues: list[dict[str, Any]]) -> None:
        """Declare more exchanges and queues to the hub (again after any hub restart)."""
        more = p.declaration(exchanges, queues)
        with self._lock:
            effects = self._session.declare(more)
            self.declared_queues.update(q.name for q in more.queues)
        self._submit(effects)

    def revoke(
        self, ids: Sequence[str], terminate: bool = False, signal: str | None = None
    ) -> None:
        """Send a revocation to the hub (see :mod:`celeriac.transport.hub.revocations`)."""
        self._submit([s.Send(p.Revoke(chunk, terminate, signal)) for chunk in p.id_chunks(ids)])

    def control(
        self, request: p.ControlRequest, timeout: float, limit: int | None = None
    ) -> Replies:
        """Send a control request through the hub and collect the replies (see
        :mod:`.gather`); without ``reply`` it returns once the hub has the request."""
        gather = self._gathers.open(request.rid, limit)
        try:
            self._submit([s.Send(request)])
            with self._following():
                return gather.wait(timeout if request.reply else min(timeout, 1.0), request.reply)
        finally:
            self._gathers.close(request.rid)

    def send_events(self, events: Sequence[dict[str, Any]]) -> None:
        """Send events to the hub's event stream (``task-sent``)."""
        self._submit([s.Send(p.EventBatch(tuple(events)))])

    def forget(self, task_id: str) -> None:
        """Ask the hub to drop a stored result."""
        with self._lock:
            self._slots.pop(task_id, None)
            effects = self._session.forget(task_id)
        self._submit(effects)

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
                lost = len(self._session.unconfirmed)
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
            pending = len(self._session.unconfirmed)
        if pending:
            _log.info("waiting_for_confirms", pending=pending, hub=self.endpoint)
        self.close(float(self.conf.broker_connection_timeout))

    # -- effects ---------------------------------------------------------------------------------

    def _submit(self, effects: list[s.Effect]) -> None:
        """Perform effects from a user thread: wake the I/O thread if there is something to send."""
        if self._perform(effects) and not self._wake_pending:
            self._wake()

    def _perform(self, effects: Iterable[s.Effect]) -> bool:
        """Perform the session's effects (without the lock); True if frames were queued."""
        queued = False
        for effect in effects:
            if isinstance(effect, s.Send):
                self._outq.append(p.encode(effect.message))
                queued = True
            elif isinstance(effect, s.Resolve):
                self._resolve(effect.task_id, outcome_of(effect.result, self._accept))
            elif isinstance(effect, s.Answer):
                self._answer(effect)
            elif isinstance(effect, s.Settled):
                with self._lock:
                    self._confirmed.notify_all()
            elif isinstance(effect, s.Log):
                getattr(_log, effect.level)(effect.event, **effect.fields)
            elif isinstance(effect, s.Dial):  # from tick: the I/O thread, see _step
                self._outq.clear()  # frames for the lost hub; its publishes are resent
                self._dial_to = effect.endpoint
        return queued

    # -- the I/O thread --------------------------------------------------------------------------

    def _wake(self) -> None:
        self._wake_pending = True
        with contextlib.suppress(OSError):  # closed: the client is shutting down
            os.write(self._wake_w, b"x")

    def _open(self, endpoint: str) -> zmq.Socket[Any]:
        """A DEALER to the hub at ``endpoint``, polled by the I/O loop."""
        sock = dealer(
            self._ctx,
            endpoint,
            self._identity,
            self._curve,
            max_message_size=self.conf.broker_max_message_size,
        )
        self._sock_fd = int(_get(sock, _FD))
        self._poller.register(self._sock_fd, zmq.POLLIN)  # the descriptor: see the docstring
        self._armed = False
        return sock

    def _redial(self, sock: zmq.Socket[Any], endpoint: str) -> zmq.Socket[Any]:
        """Failover: close the socket to the lost hub, open one to ``endpoint`` (with a new
        identity: a new session there; the lost hub forgets the old one)."""
        self._poller.unregister(int(_get(sock, _FD)))
        sock.close(0)
        self._identity = new_identity(default_node_name("client"))
        return self._open(endpoint)

    def _probe(self) -> None:
        """With several hubs, start at the first that answers (runtime/link.probe_hubs);
        publishes made meanwhile wait in the queue, sent after our HELLO."""
        hubs = self._session.hubs
        if not hubs.several:
            return
        timeout = float(self.conf.broker_connection_timeout)
        order = hubs.order()
        chosen = probe_hubs(
            self._ctx, order, self._curve, timeout=timeout, monotonic=self.clock.monotonic
        )
        if chosen is not None:
            with self._lock:
                self._session.start_at(chosen, self.clock.monotonic())

    def _run(self) -> None:
        poller = self._poller
        self._probe()
        self._sock = self._open(self.endpoint)
        poller.register(self._wake_r, zmq.POLLIN)
        idle_ms = int(self._heartbeat * 1000 / 2)
        with self._io:
            self._connect(self._sock)
            self._ready = True
            pending = self._look(self._sock)
        rest = select.poll()  # the wake pipe alone, while a leader serves the socket
        rest.register(self._wake_r, select.POLLIN)
        try:
            while not self._closing.is_set():
                if self._may_rest():
                    events = {self._wake_r: 1} if rest.poll(REST_MS) else {}
                    events[self._sock_fd] = 0  # not watched while resting: look at the socket
                    self._resting = False
                else:
                    events = dict(poller.poll(0 if pending else idle_ms))
                if self._leading and self._leave_to_leader(events):
                    continue
                self._take_socket()
                try:
                    if self._wake_r in events:
                        self._drain_wake()
                    if not self._armed or self._sock_fd in events:  # edge-triggered: see _armed
                        self._receive(self._sock)
                    self._step(self._sock, partial(self._session.tick, self.clock.monotonic()))
                    # Our own sends may have taken the signal of a message that came meanwhile.
                    pending = not self._armed and self._look(self._sock)
                finally:
                    self._io.release()
                self._set_woken()
            self._take_socket()
            try:
                self._ready = False
                self._step(self._sock, self._session.close)  # BYE: a normal close, not lost peer
                self._sock.setsockopt(zmq.LINGER, 200)
            finally:
                self._io.release()
        finally:
            self._set_woken()
            self._sock.close()
            os.close(self._wake_r)
            self._close_leader()
            self._ctx.term()

    def _leave_to_leader(self, events: dict[int, int]) -> bool:
        """Woken while a leader serves the socket: True if the leader has it all (the
        socket's signal is the leader's; a wake-up only for frames the leader already sent)."""
        if self._followers:
            return False
        if self._wake_r in events:
            self._drain_wake()  # then look at the queue (see _drain_wake)
            if self._outq:
                return False  # the leader sleeps: take the socket for these frames
        return True

    def _wake_waiter(self, event: threading.Event) -> None:
        """Wake a waiter; from the I/O thread, once its turn is over (:meth:`_set_woken`).

        Woken mid-turn, the waiter (``get()``) ran while the I/O thread still held the socket
        lock, so its next publish found the socket busy and handed its frames over through the
        pipe: about half the sequential ``delay().get()`` did (issue 18)."""
        if threading.get_ident() == self._thread.ident:
            self._woken.append(event)
        else:
            event.set()

    def _set_woken(self) -> None:
        woken = self._woken
        while woken:
            woken.pop().set()

    def _connect(self, sock: zmq.Socket[Any]) -> None:
        """HELLO first, straight to the socket: publishes queued before this thread started
        must reach the hub after our declarations, or it could not route them."""
        with self._lock:
            effects = self._session.connect()
        for effect in effects:
            if isinstance(effect, s.Send):
                send_frames(sock, p.encode(effect.message))

    def _step(self, sock: zmq.Socket[Any], call: Callable[[], list[s.Effect]]) -> None:
        """Ask the session (under the lock), perform its effects, send what is queued."""
        with self._lock:
            effects = call()
        self._perform(effects)
        if self._dial_to is not None:
            sock = self._sock = self._redial(sock, self._dial_to)
            self._dial_to = None
        outq = self._outq
        if outq:
            self._armed = False  # a send may take the signal of a message that came meanwhile
            while outq:
                send_frames(sock, p.next_batch(outq))

    def _drain_wake(self) -> None:
        # Drain first, then clear the flag, then (in the caller) send the queue: a producer
        # that saw the flag still set has its frames sent by this turn; one that sees it
        # cleared writes to the pipe again. Clearing first would lose that wake-up.
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        self._wake_pending = False

    def _receive(self, sock: zmq.Socket[Any]) -> None:
        # While ZMQ_EVENTS says a message waits: a receive that finds nothing raises zmq.Again,
        # built in Python (2.4 µs against 0.9 µs for the look, transport/multipart.py).
        while self._look(sock):
            frames = recv_frames(sock, NOBLOCK)
            now = self.clock.monotonic()
            try:
                msg = p.decode(frames)
            except FrameError as exc:
                _log.warning("bad_message_from_hub", error=str(exc))
                self._step(sock, partial(self._session.heard, now))
                continue
            if isinstance(msg, p.ControlSent | p.ControlReply | p.ControlReplyPart):
                self._gathers.arrived(msg)
                self._step(sock, partial(self._session.heard, now))
                continue
            try:
                self._step(sock, partial(self._session.handle, msg, now))
            except Exception:  # our bug: log it, keep the I/O thread serving
                _log.exception("client_internal_error", command=msg.COMMAND.decode())
