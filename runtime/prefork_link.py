"""The prefork parent's own connection to the hub: it speaks for the node, never for a task.

The parent joins the hub as a client (``HELLO``, ``CONTROL_JOIN`` under the node's name): it
answers remote control for the whole node (asking its children where they know better, see
:mod:`.prefork_control`), pings and sends the node's heartbeat events, and introduces itself
again to a restarted hub. Tasks, their outcomes and their confirmations go over each child's
own connection, never over this one. With several hubs in ``broker_url`` it moves to the next
when its hub falls silent (:class:`~.link.HubLink`), as the children's connections do.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import zmq

from celeriac._log import get_logger
from celeriac._wire_control2 import reply_messages
from celeriac.exceptions import FrameError
from celeriac.transport import protocol as p
from celeriac.transport.multipart import NOBLOCK, recv_frames, send_frames

if TYPE_CHECKING:
    from .link import HubLink
    from .prefork_control import PreforkView

__all__ = ["ParentLink"]

_log = get_logger("celeriac.prefork")


class ParentLink:
    """The parent's DEALER to the hub (owned here; closed by :meth:`close`)."""

    def __init__(self, link: HubLink, hostname: str, heartbeat: float, view: PreforkView) -> None:
        self.link = link
        self.hostname = hostname
        self.heartbeat = heartbeat
        self.view = view
        self.next_ping = 0.0
        self.last_heard: float | None = None
        # HubLink swaps the socket in a poller; the parent waits on its children, not on it.
        self._poller = zmq.Poller()
        self._poller.register(link.sock, zmq.POLLIN)
        self.hello()

    @property
    def sock(self) -> zmq.Socket[Any]:
        """The DEALER to the hub talked to now."""
        return self.link.sock

    def send(self, message: p.Message) -> None:
        """Send ``message`` to the hub."""
        send_frames(self.sock, p.encode(message))

    def hello(self) -> None:
        """Introduce the node's parent to the hub (again, to a restarted one)."""
        self.send(p.Hello("client", f"{self.hostname}/parent"))
        self.send(p.ControlJoin(self.hostname))

    def close(self) -> None:
        """Say BYE and close, letting the BYE leave (the hub requeues nothing then)."""
        with contextlib.suppress(zmq.ZMQError):
            self.send(p.Bye())
        self.sock.close(linger=500)

    def tick(self, now: float) -> None:
        """Answer the hub's pings, ping it, re-introduce ourselves to a restarted hub."""
        if now >= self.next_ping:
            self.next_ping = now + self.heartbeat
            self.send(p.Ping())
            self.view.heartbeat()
        self._drain(now)
        if self.link.moved(self._poller, self.last_heard, now):  # hub lost: the next one
            self.last_heard = now
            self.hello()
        self.view.answer_due(now)

    def _drain(self, now: float) -> None:
        """Handle what the hub sent."""
        while True:
            try:
                frames = recv_frames(self.sock, NOBLOCK)
            except zmq.Again:
                return
            self.last_heard = now
            try:
                msg = p.decode(frames)
            except FrameError as exc:
                _log.warning("bad_message_from_hub", error=str(exc))
                continue
            if isinstance(msg, p.Ping):
                self.send(p.Pong())
            elif isinstance(msg, p.ControlCommand):
                if msg.reply and self.view.ask_children(msg):
                    continue  # answered when the children have (PreforkView.answer_due)
                reply = self.view.node.panel.handle(self.view, msg.command, dict(msg.arguments))
                if msg.reply:
                    for message in reply_messages(msg.rid, self.hostname, reply):
                        self.send(message)
            elif isinstance(msg, p.Error) and msg.code == "hello":
                self.hello()
