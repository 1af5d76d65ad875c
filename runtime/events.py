"""``app.events``: receive the hub's event stream (Celery's ``app.events.Receiver``).

How it works
------------
A :class:`Receiver` subscribes to the hub's PUB socket (``hub_events_url``, by default the broker
port + 1; under the same CURVE settings as the commands). Each message is ``[type, msgpack
map]``. Events workers and clients sent (``EVENTS``) are Celery's maps already; the hub's own
(worker-online/offline, and task-started/-succeeded/... with the result header) are turned into
the same shape (``uuid``, ``hostname``, ``timestamp``, ``state``) and marked ``"hub": True``;
the hub's worker events of prefork children (``node/N``) are left out: the node's parent sends
its own ``worker-online``/``worker-offline``.
When a worker sends task events (``-E``) its event of a kind reaches the hub before the hub's
own copy (same connection, in order), and the hub then does not publish its copy
(:mod:`celeriac.transport.hub.control2`); should a copy still come (an older hub), the one of
the same ``(uuid, type)`` is dropped here: each event of a task's life is handed over once.
With several hubs in ``broker_url`` the receiver subscribes to each (a hub publishes the events
of the peers connected to it).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import msgpack
import zmq

from celeriac._app import App
from celeriac.events import State
from celeriac.transport.curve import CurveClient
from celeriac.transport.endpoints import hub_addresses, hub_events_urls

__all__ = ["Events", "Receiver", "normalize"]

Handler = Callable[[dict[str, Any]], Any]
_SEEN_LIMIT: Final = 20_000
#: The peer name of a prefork child (``node/3``).
_CHILD: Final = re.compile(r".+/\d+$")


def normalize(topic: bytes, payload: bytes) -> dict[str, Any] | None:
    """One PUB message as Celery's event map (None if it is not readable)."""
    try:
        data = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception:
        return None
    if not isinstance(data, dict):
        return None
    kind = topic.decode(errors="replace")
    if "type" in data:
        return data
    event: dict[str, Any] = {"type": kind, "timestamp": time.time(), "hub": True}
    if kind.startswith("worker-"):
        if _CHILD.match(str(data.get("hostname", ""))):
            return None  # a prefork child's own connection: its parent speaks for the node
        event.update(data)
    else:
        event["uuid"] = data.get("id")
        if "state" in data:
            event["state"] = data["state"]
    return event


class Receiver:
    """Calls ``handlers[type]`` (or ``handlers["*"]``) for each event from the hub."""

    def __init__(
        self,
        app: App,
        handlers: Mapping[str, Handler] | None = None,
        *,
        url: str | None = None,
        connection: Any = None,
        **_: Any,
    ) -> None:
        self.app = app
        self.handlers = dict(handlers or {})
        conf = app.conf
        #: Every hub of broker_url publishes its own peers' events: subscribe to each.
        self.url = url or conf.hub_events_url or hub_events_urls(conf.broker_url)
        self._ctx: zmq.Context[Any] = zmq.Context()
        self._sock: zmq.Socket[Any] = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        curve = CurveClient.from_settings(conf)
        if curve is not None:
            curve.apply(self._sock)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        for address in hub_addresses(self.url):
            self._sock.connect(address)
        self._seen: OrderedDict[tuple[Any, str], None] = OrderedDict()
        self.should_stop = False

    def close(self) -> None:
        """Close the socket."""
        self._sock.close(0)
        self._ctx.term()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _duplicate(self, event: dict[str, Any]) -> bool:
        key = (event.get("uuid"), str(event.get("type")))
        if key[0] is None:
            return False
        if event.get("hub"):
            return key in self._seen
        self._seen[key] = None
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        return False

    def itercapture(
        self, limit: int | None = None, timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield events as they come: at most ``limit``, until ``timeout`` seconds pass
        without one (None: forever), or until :attr:`should_stop` is set."""
        count = 0
        while not self.should_stop and (limit is None or count < limit):
            wait = 250 if timeout is None else int(min(timeout, 0.25) * 1000)
            deadline = None if timeout is None else time.monotonic() + timeout
            got = False
            while not got:
                if self._sock.poll(wait):
                    got = True
                elif self.should_stop or (deadline is not None and time.monotonic() > deadline):
                    return
            frames = self._sock.recv_multipart()
            if len(frames) != 2:
                continue
            event = normalize(frames[0], frames[1])
            if event is None or self._duplicate(event):
                continue
            count += 1
            yield event

    def capture(
        self, limit: int | None = None, timeout: float | None = None, wakeup: bool = True
    ) -> None:
        """Dispatch events to the handlers (Celery's ``capture``); ``wakeup`` asks the workers
        for a heartbeat first, so the worker list fills at once."""
        if wakeup:
            self.app.control.heartbeat()
        for event in self.itercapture(limit, timeout):
            handler = self.handlers.get(event["type"]) or self.handlers.get("*")
            if handler is not None:
                handler(event)


class Events:
    """``app.events``: ``Receiver(handlers=...)`` and ``State()``."""

    def __init__(self, app: App) -> None:
        self.app = app

    def Receiver(  # noqa: N802 - Celery's name
        self, connection: Any = None, handlers: Mapping[str, Handler] | None = None, **kw: Any
    ) -> Receiver:
        """A receiver of the hub's events calling ``handlers`` by type (``"*"``: any)."""
        return Receiver(self.app, handlers, **kw)

    def State(self, **kw: Any) -> State:  # noqa: N802 - Celery's name
        """An empty in-memory :class:`~celeriac.events.State`."""
        return State(**kw)
