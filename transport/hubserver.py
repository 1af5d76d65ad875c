"""The hub's socket loop: one ROUTER socket, one thread waiting in ``poll(2)`` (:mod:`.hubwait`).

Each turn: receive up to :attr:`HubServer.batch` messages (and about
:attr:`HubServer.turn_frames` frames) and hand them to the
:class:`~celeriac.transport.hub.HubState`, run its timers, commit the store once (group
commit), then send what the state queued. Sends never block: ``ROUTER_MANDATORY`` turns an
unroutable peer into an error we act on (its deliveries are requeued) instead of a silent drop.
A socket monitor tells the loop when any connection closes, and the state then pings workers
so a dead one is noticed in milliseconds, not after missed heartbeats. The events socket is an
XPUB whose subscriptions the loop reads: while there are none, the state builds no events.
"""

from __future__ import annotations

import errno
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import zmq

from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._hub_settings import DEFAULT_MAX_MESSAGE_SIZE
from celeriac._log import get_logger
from celeriac.exceptions import ImproperlyConfigured

from . import hubfiles
from .curve import CurveServer, warn_if_exposed
from .endpoints import events_url
from .hub.limits import HubLimits
from .hub.memory import IdleRelease
from .hub.outbox import coalesced
from .hub.storage import STORAGE_ERRORS
from .hubevents import EventsSocket
from .hubfiles import HubAddressError, default_data_dir
from .hubstate import state_class
from .hubwait import EVENTS, MONITOR, ROUTER, TurnWait, drain
from .lazycommit import LAZY_COMMANDS, LazyCommit
from .multipart import NOBLOCK, readable, recv_frames, send_frames
from .protocol import frames_held
from .sockets import configure_router

__all__ = ["HubAddressError", "HubServer", "default_data_dir", "events_url"]

_log = get_logger("celeriac.hub")


class HubServer:
    """A hub bound to one address, storing in ``data_dir``; run it with :meth:`run`."""

    batch = 1000
    #: A turn stops taking messages after this many frames (whole messages, at least one; a
    #: packed message counts the frames it packs, see ``celeriac._wire_items``):
    #: a turn's deliveries leave after its commit, so a turn that took a producer's whole
    #: burst left the workers' windows empty meanwhile (issue 18; benchmarks/README.md). The
    #: ROUTER reads peers fairly, so the workers' outcomes are read every turn.
    turn_frames = 512

    def __init__(
        self,
        bind: str,
        data_dir: Path | str,
        *,
        sync: str = "normal",
        heartbeat: float = 2.0,
        result_expires: float | None = 86400.0,
        clock: Clock = SYSTEM_CLOCK,
        context: zmq.Context[Any] | None = None,
        also_bind: tuple[str, ...] = (),
        max_deliveries: int = 5,
        events: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        curve: CurveServer | None = None,
        visibility_timeout: float | None = None,
        limits: HubLimits | None = None,
        result_failure_expires: float | None = None,
        store_url: str | None = None,
        shared: bool = False,
    ) -> None:
        if shared and not store_url:
            raise ImproperlyConfigured(
                "--shared (hub_store_shared) needs a PostgreSQL store: --store postgresql://..."
            )
        self._ctx = context or zmq.Context.instance()
        self._router = self._ctx.socket(zmq.ROUTER)
        configure_router(self._router, bind, max_message_size=max_message_size)
        self.curve = curve
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._lock_file, self.store = hubfiles.open_bound(
            self._router,
            bind,
            also_bind=also_bind,
            curve=curve,
            data_dir=self.data_dir,
            store_url=store_url,
            sync=sync,
            shared=shared,
        )
        warn_if_exposed(bind, curve)
        self.hub_id = uuid.uuid4().hex[:12]
        self.clock = clock
        self.state = state_class(shared)(
            self.store,
            clock,
            hub_id=self.hub_id,
            heartbeat=heartbeat,
            result_expires=result_expires,
            max_deliveries=max_deliveries,
        )
        self.state.max_message_size = max_message_size
        self.state.visibility_timeout = visibility_timeout
        self.state.apply_limits(limits or HubLimits())
        self.state.result_failure_expires = result_failure_expires
        if shared:
            self.state.start_listening()  # type: ignore[attr-defined]
        self.endpoint: str = self._router.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._open_events(events or events_url(bind), curve)
        self._monitor = self._router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._wait = TurnWait(self._router, self._monitor, self._events.sock)
        #: A message waits on the router (asked at the end of each turn: see .hubwait).
        self._ready = True
        self._closed = False  # a connection closed since the router was last read empty
        self._unreachable: set[bytes] = set()  # peers a send found gone, lost next turn
        self._stop = threading.Event()
        #: Held by the loop for each turn's work: other threads read the state between turns.
        self._turn = threading.RLock()
        self._thread: threading.Thread | None = None
        # Shared hubs claim rows from a table other hubs read: a claim must be committed before
        # its deliveries leave, or a hub killed after sending leaves them claimable elsewhere.
        self._lazy = LazyCommit(clock, enabled=not shared)
        self._idle = IdleRelease(clock)  # memory given back after a burst (see .hub.memory)
        #: Called (in the hub's thread) if the loop dies: the embedded hub's supervisor.
        self.on_death: Callable[[BaseException], None] | None = None
        restored = self.state.restore()
        self.store.commit()
        #: The PostgreSQL store's URL (None: SQLite in :attr:`data_dir`).
        self.store_url = store_url or None
        #: Where the store is, for logs and banners (never a password).
        self.store_description = (
            hubfiles.describe_url(store_url) if store_url else f"sqlite in {self.data_dir}"
        )
        _log.info(
            "hub_started",
            endpoint=self.endpoint,
            data_dir=str(self.data_dir),
            store=self.store_description,
            restored=restored,
            hub_id=self.hub_id,
            shared=shared,
            events=self.events_endpoint,
        )

    def _open_events(self, url: str, curve: CurveServer | None) -> None:
        self._events = EventsSocket(self._ctx, url, curve)
        self.state.events_wanted = False  # until the first subscription

    @property
    def events_endpoint(self) -> str | None:
        """Where the hub publishes events (None: events disabled, their port was taken)."""
        return self._events.endpoint

    @classmethod
    def from_settings(
        cls,
        conf: Mapping[str, Any],
        *,
        bind: str | None = None,
        data_dir: Path | str | None = None,
        sync: str | None = None,
        context: zmq.Context[Any] | None = None,
        also_bind: tuple[str, ...] = (),
        store_url: str | None = None,
        shared: bool | None = None,
    ) -> HubServer:
        """A hub configured by the app's settings (``broker_url``, ``hub_data_dir``,
        ``hub_sync``, ``hub_store_url``, ``hub_store_shared``, ``broker_heartbeat``,
        ``result_expires``, ``result_failure_expires``, ``broker_max_deliveries``,
        ``hub_events_url``, ``broker_max_message_size``, ``broker_visibility_timeout``, the CURVE
        settings, the caps of :class:`~.hub.limits.HubLimits`); keyword arguments override the
        matching setting."""
        return cls(
            bind or conf["broker_url"],
            data_dir or conf["hub_data_dir"] or default_data_dir(bind or conf["broker_url"]),
            sync=sync or conf["hub_sync"],
            heartbeat=float(conf["broker_heartbeat"]),
            result_expires=conf["result_expires"],
            max_deliveries=conf["broker_max_deliveries"],
            events=conf["hub_events_url"],
            max_message_size=conf["broker_max_message_size"],
            curve=CurveServer.from_settings(conf),
            visibility_timeout=conf["broker_visibility_timeout"],
            limits=HubLimits.from_settings(conf),
            result_failure_expires=conf["result_failure_expires"],
            context=context,
            also_bind=also_bind,
            store_url=store_url if store_url is not None else conf["hub_store_url"],
            shared=conf["hub_store_shared"] if shared is None else shared,
        )

    # -- running ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until :meth:`stop` is called; closes everything on the way out."""
        try:
            while not self._stop.is_set():
                self._wait_and_turn()
        finally:
            self._close()

    def _wait_and_turn(self) -> None:
        """Wait for work (not when a message waits already), then run one turn."""
        wait = self._wait
        wait.watch(self.state.wake_fd())
        fired = wait.wait(0 if self._ready or self._unreachable else self._timeout_ms())
        with self._turn:
            try:
                self._one_turn(fired)
            except Exception as exc:  # our bug: logged and counted, the loop goes on
                self._ready = True  # the socket's state unknown: look again before sleeping
                self.state.counters["internal_errors"] += 1
                _log.exception(
                    "hub_internal_error",
                    command="loop",
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )

    def _one_turn(self, fired: int) -> None:
        # Only a turn that took messages, all of LAZY_COMMANDS, may leave its writes for later.
        if fired & MONITOR and drain(self._monitor):
            self._closed = True  # a connection closed: see _lose_peers
        lazy = self._receive() if self._ready or fired & ROUTER or self._closed else False
        if (self._closed or self._unreachable) and not readable(self._router):
            self._lose_peers()
        if fired & EVENTS:
            self._events.follow()
            self.state.events_wanted = self._events.wanted
        try:
            self.state.tick()
        except STORAGE_ERRORS as exc:  # a read of the tick's met the store away
            self.store.rollback()
            self.state.commit_failed(exc)
            lazy = False
        state = self.state
        if state.storage_error is not None:
            if state.probe_due():
                state.probe()
            lazy = False  # a turn that promises nothing about the store sends first:
        if not (lazy and self._lazy.may_defer(state.outbox)):  # see .lazycommit
            self._commit()
        if state.confirm_hold:  # held, committed: see .hub.confirmhold
            state.release_confirms(self.clock.monotonic())
        self._flush()
        # Asked after the turn's last use of the socket: its descriptor is edge-triggered.
        self._ready = ready = readable(self._router)
        if self._lazy.deferred and not ready:
            self._write_ahead()
        self._idle.turn(self.state)

    def _write_ahead(self) -> None:
        """Deferred writes handed to the store while the loop would wait for work: the next
        turn's commit (a publish's, on the idle round trip) then only commits them."""
        try:
            self.store.write_ahead()
        except STORAGE_ERRORS as exc:  # rolled back, as a failed commit of them would be
            self._lazy.committed()
            self.state.commit_failed(exc)

    def _commit(self) -> None:
        """Group commit; a store that cannot write is handled by the state (see
        :mod:`.hub.storage`): refusals replace the turn's confirmations."""
        self._lazy.committed()
        try:
            self.store.commit()
        except STORAGE_ERRORS as exc:
            self.state.commit_failed(exc)
        else:
            self.state.confirm_hold.committed(self.clock.monotonic())
            self.state.storage_works()

    def statistics(self) -> dict[str, Any]:
        """The state's counters, read between two turns of the loop (safe from any thread)."""
        with self._turn:
            return self.state.statistics()

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread (the embedded hub); returns the thread."""
        self._thread = threading.Thread(target=self._run_watched, name="celeriac-hub", daemon=True)
        self._thread.start()
        return self._thread

    def _run_watched(self) -> None:
        """The embedded hub's thread: if the loop itself ever dies, :attr:`on_death` is called
        (the worker exits non-zero) rather than the process living on without its hub."""
        try:
            self.run()
        except BaseException as exc:
            _log.critical("hub_thread_died", error=f"{type(exc).__name__}: {exc}"[:300])
            if self.on_death is not None:
                self.on_death(exc)
            raise

    def thread_alive(self) -> bool:
        """Whether the thread :meth:`start` started still runs (the loop, or its closing)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to finish its turn, commit and close; wait for the thread if any."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- one turn --------------------------------------------------------------------------------

    def _timeout_ms(self) -> int:
        deadline = self.state.next_deadline()
        timeout = 100
        if deadline is not None:
            timeout = max(0, min(100, int((deadline - self.clock.time()) * 1000) + 1))
        held = self.state.confirm_hold.deadline()
        if held is not None:
            timeout = max(0, min(timeout, int((held - self.clock.monotonic()) * 1000) + 1))
        return self._lazy.timeout_ms(timeout)

    def _receive(self) -> bool:
        """Hand up to :attr:`batch` messages (until :attr:`turn_frames` frames) to the state;
        True if there were some, all of :data:`~.lazycommit.LAZY_COMMANDS`."""
        handle = self.state.handle
        router = self._router
        lazy = True
        budget = self.turn_frames
        for i in range(self.batch):
            try:
                frames = recv_frames(router, NOBLOCK)
            except zmq.Again:
                return lazy and i > 0
            if lazy and (len(frames) < 3 or frames[2] not in LAZY_COMMANDS):
                lazy = False
            message = frames[1:]  # (frames[0]: the peer's identity)
            handle(frames[0], message)
            budget -= frames_held(message)
            if budget <= 0:  # the rest next turn, after this one's deliveries leave
                return lazy
            if i == 0 and not readable(router):  # most turns under load carry one message:
                return lazy  # asking is cheaper then than the receive that finds nothing
        return lazy

    def _lose_peers(self) -> None:
        """Act on closed connections once the router is read to empty, never before: what a
        peer sent before it closed (its last ``DONE``) must not find its tasks requeued."""
        if self._closed:
            self._closed = False
            self.state.probe_peers()
        while self._unreachable:
            self.state.peer_unreachable(self._unreachable.pop())

    def _flush(self) -> None:
        outbox = self.state.outbox
        router = self._router
        while outbox:
            batch = coalesced(outbox)
            outbox.clear()
            for frames in batch:
                try:
                    send_frames(router, frames, NOBLOCK)
                except zmq.ZMQError as exc:
                    if exc.errno == errno.EHOSTUNREACH:  # lost next turn: see _lose_peers
                        self._unreachable.add(frames[0])
                    else:  # EAGAIN: the peer is not reading; it will ask again
                        _log.warning("send_dropped", peer=frames[0][:64], error=str(exc))
            if outbox:  # dropping a peer requeued work for others: commit, then send that too
                self._commit()
        if self.state.events:
            self._events.publish(self.state.events)
            self._events.follow()  # a send may have taken the command of a subscription
            self.state.events_wanted = self._events.wanted

    def _close(self) -> None:
        self.state.release_confirms(self.clock.monotonic(), final=True)  # committed: send them
        self._flush()
        self._lose_peers()
        self.state.close()
        self.store.close()
        self._router.disable_monitor()
        self._monitor.close(0)
        self._router.close(0)
        self._events.close()
        self._release_lock()
        if self.curve is not None:
            self.curve.stop()
        _log.info(
            "hub_stopped",
            endpoint=self.endpoint,
            **{k: v for k, v in self.state.counters.items() if v},
        )

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            hubfiles.release_lock(self._lock_file)
            self._lock_file = None
