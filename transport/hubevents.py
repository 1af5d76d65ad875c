"""The hub's events socket: an XPUB the hub publishes task and worker events on.

XPUB rather than PUB so the hub reads the subscriptions: while nobody subscribes, the state
builds no events at all (:attr:`EventsSocket.wanted`). Events go out after the turn's commit
and never block: a slow reader loses them (events are never tasks). A port that cannot be
bound disables events with a warning, not the hub (:func:`.hubfiles.bind_events`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import zmq

from . import hubfiles
from .curve import CurveServer
from .multipart import NOBLOCK, recv_frames, send_frames

__all__ = ["EventsSocket"]


class EventsSocket:
    """The hub's XPUB at ``url`` (``sock`` None where it could not be bound)."""

    def __init__(self, ctx: zmq.Context[Any], url: str, curve: CurveServer | None) -> None:
        self.sock, self.endpoint = hubfiles.bind_events(ctx, url, curve)
        #: The topics subscribed to (XPUB tells each first subscription of a topic and each
        #: last unsubscription, a subscriber's leaving included).
        self._topics: set[bytes] = set()

    @property
    def wanted(self) -> bool:
        """Whether anybody subscribes (the state builds events only then)."""
        return bool(self._topics)

    def follow(self) -> None:
        """Read the (un)subscriptions waiting: ``\\x01`` or ``\\x00``, then the topic."""
        if self.sock is None:
            return
        while True:
            try:
                frames = recv_frames(self.sock, NOBLOCK)
            except zmq.Again:
                return
            change = frames[0]
            if change[:1] == b"\x01":
                self._topics.add(change[1:])
            elif change[:1] == b"\x00":
                self._topics.discard(change[1:])

    def publish(self, events: list[list[bytes]]) -> None:
        """Send ``events`` (each a message's frames) and clear the list."""
        if self.sock is not None:
            for frames in events:
                with contextlib.suppress(zmq.Again):  # never blocks: a slow reader loses
                    send_frames(self.sock, frames, NOBLOCK)
        events.clear()

    def close(self) -> None:
        """Close the socket."""
        if self.sock is not None:
            self.sock.close(0)
