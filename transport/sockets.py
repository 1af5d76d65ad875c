"""Socket options, in one place: every ZeroMQ socket the hub binds is configured here.

Why each option
---------------
* ``LINGER 0``: closing never blocks on unsent messages (libzmq's default is infinite).
* ``ROUTER_MANDATORY``: an unroutable send is an error the hub acts on, not a silent drop.
* ``ROUTER_HANDOVER``: a peer reconnecting with its identity takes it over.
* ``SNDHWM``/``RCVHWM``: above every credit the hub hands out (credits are the back-pressure).
* ``MAXMSGSIZE``: a single frame larger than ``broker_max_message_size`` plus
  :data:`FRAME_SLACK` makes libzmq drop the connection before the frame is buffered in RAM;
  frames between the setting and that bound reach the hub, which refuses them with a NACK
  that names the setting.
"""

from __future__ import annotations

from typing import Any, Final

import zmq

from .endpoints import needs_ipv6

__all__ = ["FRAME_SLACK", "configure_events", "configure_router", "max_frame_size"]

#: Room above ``broker_max_message_size`` for frames the hub still reads (to NACK them).
FRAME_SLACK: Final = 1024 * 1024
#: Messages the hub's ROUTER buffers each way.
ROUTER_HWM: Final = 200_000
#: Events the PUB socket buffers for a slow subscriber before it drops.
EVENTS_HWM: Final = 10_000


def max_frame_size(max_message_size: int) -> int:
    """The ``MAXMSGSIZE`` for a given ``broker_max_message_size``."""
    return max_message_size + FRAME_SLACK


def configure_router(sock: zmq.Socket[Any], url: str, *, max_message_size: int) -> None:
    """The hub's command socket (ROUTER)."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IPV6, int(needs_ipv6(url)))  # tcp://[::1]:5555...
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    sock.setsockopt(zmq.SNDHWM, ROUTER_HWM)
    sock.setsockopt(zmq.RCVHWM, ROUTER_HWM)
    sock.setsockopt(zmq.MAXMSGSIZE, max_frame_size(max_message_size))


def configure_events(sock: zmq.Socket[Any], url: str) -> None:
    """The hub's events socket (XPUB): it receives nothing but subscriptions."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IPV6, int(needs_ipv6(url)))
    sock.setsockopt(zmq.SNDHWM, EVENTS_HWM)
    sock.setsockopt(zmq.MAXMSGSIZE, 64 * 1024)
