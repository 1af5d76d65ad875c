"""Settings of the hub's limits and transport security, declared where they are documented.

Imported by :mod:`celeriac._app` (as :mod:`celeriac.routing` is), so an App knows them.
"""

from __future__ import annotations

from celeriac._conf import declare, int_check, parse_int

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE"]

#: 64 MiB: far above any sane task argument, far below what stalls a hub.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

declare(
    "broker_max_message_size",
    DEFAULT_MAX_MESSAGE_SIZE,
    "The largest task body (arguments) or result body in bytes. The client refuses a bigger "
    "publish before sending it (PublishError), the hub refuses one with a NACK that says so, "
    "and the hub's sockets drop a peer whose single frame is far larger "
    "(zmq.MAXMSGSIZE: this size plus room for headers). Pass big data by reference.",
    parse=parse_int,
    check=int_check("broker_max_message_size", minimum=1024),
)
