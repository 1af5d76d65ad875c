"""Publishing from user threads: the :class:`~celeriac.runtime.client.Client`'s ``publish``
and ``flush``.

A publish asks the session (under the client's lock) and normally queues the frames for the
I/O thread. One made while nothing is in flight (no publish unconfirmed: the sequential
``delay().get()``) is sent by the publishing thread itself when the socket lock is free (see
the client's module docstring): that saves the wake-up of the I/O thread on the round trip
(issue 18). A publisher waits while the session holds its cap of unconfirmed publishes, and
``flush`` until the hub confirmed them all.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import AbstractContextManager
from typing import Any, Final

import zmq

from celeriac._clock import Clock
from celeriac._conf import Settings
from celeriac._log import get_logger
from celeriac.exceptions import PublishError, TimeoutError
from celeriac.transport import protocol as p
from celeriac.transport import session as s
from celeriac.transport.hub.limits import too_big
from celeriac.transport.multipart import NOBLOCK, send_frames

__all__ = ["WARN_AFTER", "ClientPublish"]

_log = get_logger("celeriac.client")
#: Seconds a publish waits at the unconfirmed cap before the wait is logged as a warning.
WARN_AFTER: Final = 1.0


class ClientPublish:
    """Publishes and confirmations, for :class:`~celeriac.runtime.client.Client`."""

    conf: Settings
    clock: Clock
    endpoint: str
    _lock: threading.Lock
    _confirmed: threading.Condition
    _session: s.ClientSession
    _io: threading.Lock
    _ready: bool
    _outq: deque[list[bytes]]
    _sock: zmq.Socket[Any]
    _thread: threading.Thread
    _wake_pending: bool
    _armed: bool

    def _wake(self) -> None:
        raise NotImplementedError  # the client's: wakes its I/O thread

    def _following(self) -> AbstractContextManager[None]:
        raise NotImplementedError  # the client's: a wait the I/O thread serves

    def _look(self, sock: zmq.Socket[Any]) -> bool:
        raise NotImplementedError  # the leader's: a message waits (and arms the descriptor)

    def publish(self, message: p.TaskMessage) -> None:
        """Queue a publish; returns at once (``flush`` waits for the hub's confirmation)."""
        if len(message.body) > self.conf.broker_max_message_size:  # refused before sending
            raise PublishError(too_big(len(message.body), self.conf.broker_max_message_size))
        with self._lock:
            if self._session.full() and threading.current_thread() is not self._thread:
                self._wait_for_room()
            idle = not self._session.unconfirmed
            self._session.hold(message)
        # The session's publish effect, encoded here without building it (ClientSession.hold).
        frames = p.publish_frames(message)
        if idle and self._send_now(frames):
            return
        self._outq.append(frames)
        if not self._wake_pending:
            self._wake()

    def _send_now(self, frames: list[bytes]) -> bool:
        """Send ``frames`` from this thread if the socket is free and nothing waits in the
        queue; False (nothing sent) otherwise: queue them then."""
        if not self._io.acquire(blocking=False):  # the I/O thread's turn: it will send them
            return False
        try:
            if not self._ready or self._outq:  # before HELLO, or behind queued frames
                return False
            sock = self._sock
            self._armed = False  # even a failed send may take a message's signal
            try:
                send_frames(sock, frames, NOBLOCK)
            except zmq.Again:  # the hub is away and the pipe full: the I/O thread waits
                return False
            # Our send may have taken the signal of a message that arrived meanwhile.
            if self._look(sock) and not self._wake_pending:
                self._wake()
            return True
        finally:
            self._io.release()

    def _wait_for_room(self) -> None:
        """Block (holding the lock's condition) while the session holds its cap of unconfirmed
        publishes; PublishError after ``broker_publish_timeout`` (the publish is not sent)."""
        timeout = float(self.conf.broker_publish_timeout)
        deadline = self.clock.monotonic() + timeout
        blocked = {
            "hub": self.endpoint,
            "unconfirmed": len(self._session.unconfirmed),
            "unconfirmed_bytes": self._session.unconfirmed_bytes,
            "timeout": timeout,
        }
        # A burst meets the cap again and again while the hub keeps up: back-pressure, said at
        # debug; a wait past WARN_AFTER means a hub away or overwhelmed: a warning, once.
        _log.debug("publish_blocked", **blocked)
        warned = False
        while self._session.full():
            left = deadline - self.clock.monotonic()
            if not warned and timeout - left >= WARN_AFTER:
                _log.warning("publish_blocked", waited=round(timeout - left, 1), **blocked)
                warned = True
            if left <= 0:
                raise PublishError(
                    f"not sent: {len(self._session.unconfirmed)} publishes "
                    f"({self._session.unconfirmed_bytes} bytes) still wait for the hub at "
                    f"{self.endpoint} to confirm them (broker_max_unconfirmed="
                    f"{self._session.max_unconfirmed}, broker_max_unconfirmed_bytes="
                    f"{self._session.max_unconfirmed_bytes}), after waiting "
                    f"broker_publish_timeout={timeout}s: is the hub running and reachable?"
                )
            with self._following():
                self._confirmed.wait(min(left, 1.0))

    def flush(self, timeout: float | None = None) -> None:
        """Block until every publish so far is confirmed; raise PublishError for refusals."""
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        with self._lock:
            while self._session.unconfirmed:
                left = None if deadline is None else deadline - self.clock.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"{len(self._session.unconfirmed)} publishes not confirmed by the hub "
                        f"at {self.endpoint} within {timeout}s"
                    )
                with self._following():
                    self._confirmed.wait(left if left is None else min(left, 1.0))
            refused = self._session.take_refused()
        if refused:
            lines = "; ".join(f"{tid}: {reason}" for tid, reason in refused[:5])
            raise PublishError(f"the hub refused {len(refused)} publish(es): {lines}")
