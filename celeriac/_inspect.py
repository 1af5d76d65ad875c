"""``app.control.inspect()``: read-only questions to the workers, as Celery's ``Inspect``.

Each method returns ``{node: answer}`` for the nodes that answered within the timeout, or None
when none did (Celery's convention); :attr:`Inspect.missing` lists the nodes that did not
answer. ``scheduled`` is answered by the hub, which holds ETA/countdown messages for the
queues each node consumes (their arguments are decoded here, in the client).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._serialization import loads, normalize_accept

if TYPE_CHECKING:
    from ._control import Control

__all__ = ["Inspect"]


class Inspect:
    """Questions to the nodes in ``destination`` (None: all); see the module docstring."""

    def __init__(
        self,
        control: Control,
        destination: tuple[str, ...] | None = None,
        timeout: float = 1.0,
        limit: int | None = None,
    ) -> None:
        self.control = control
        self.destination = destination
        self.timeout = timeout
        self.limit = limit
        #: The nodes that did not answer the last question in time.
        self.missing: list[str] = []

    def _request(self, command: str, **arguments: Any) -> dict[str, Any] | None:
        replies = self.control.request(
            command, arguments, self.destination, True, self.timeout, self.limit
        )
        self.missing = list(self.control.last_missing)
        return replies or None

    def __getattr__(self, name: str) -> Any:
        """A custom ``@inspect_command``: ``inspect().my_command(**arguments)``."""
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda **arguments: self._request(name, **arguments)

    def ping(self) -> dict[str, Any] | None:
        """``{node: {"ok": "pong"}}``."""
        return self._request("ping")

    def clock(self) -> dict[str, Any] | None:
        """Each node's logical clock: ``{node: {"clock": n}}``."""
        return self._request("clock")

    def active(self, safe: bool | None = None) -> dict[str, Any] | None:
        """The tasks each node runs now (Celery's request dicts)."""
        return self._request("active")

    def reserved(self, safe: bool | None = None) -> dict[str, Any] | None:
        """The tasks each node has received and not started (prefetched)."""
        return self._request("reserved")

    def scheduled(self, safe: bool | None = None) -> dict[str, Any] | None:
        """The ETA/countdown tasks waiting (at the hub) for each node's queues."""
        answer = self._request("scheduled")
        if answer is None:
            return None
        accept = normalize_accept(self.control.app.conf.accept_content)
        return {node: [_scheduled(e, accept) for e in entries] for node, entries in answer.items()}

    def registered(self, *taskinfoitems: str) -> dict[str, Any] | None:
        """The task names each node knows (``registered("rate_limit")`` adds attributes)."""
        return self._request("registered", taskinfoitems=list(taskinfoitems))

    registered_tasks = registered

    def stats(self) -> dict[str, Any] | None:
        """Each node's pool, connection and process figures."""
        return self._request("stats")

    def revoked(self) -> dict[str, Any] | None:
        """The revoked task ids (held durably by the hub: the same list for each node)."""
        return self._request("revoked")

    def active_queues(self) -> dict[str, Any] | None:
        """The queues each node consumes."""
        return self._request("active_queues")

    def conf(self, with_defaults: bool = False) -> dict[str, Any] | None:
        """Each node's settings (all of them with ``with_defaults``)."""
        return self._request("conf", with_defaults=True)

    def query_task(self, *ids: str | Sequence[str]) -> dict[str, Any] | None:
        """Where these task ids are: ``{node: {id: ["active" | "reserved", request]}}``."""
        flat: list[str] = []
        for item in ids:
            flat.extend([item] if isinstance(item, str) else item)
        return self._request("query_task", ids=flat)

    def report(self) -> dict[str, Any] | None:
        """Each node's versions and setup: ``{node: {"ok": text}}``."""
        return self._request("report")


def _scheduled(entry: dict[str, Any], accept: frozenset[str]) -> dict[str, Any]:
    """A hub's scheduled entry in Celery's shape: ISO ETA, arguments decoded."""
    request = dict(entry.get("request") or {})
    body, content_type = request.pop("body", b""), request.pop("content_type", "")
    try:
        args, kwargs, *_ = loads(body, content_type, accept)
    except Exception:
        args, kwargs = None, None
    request["args"], request["kwargs"] = args, kwargs
    eta = entry.get("eta")
    when = None if eta is None else dt.datetime.fromtimestamp(eta, dt.UTC).isoformat()
    return {"eta": when, "priority": entry.get("priority", 0), "request": request}
