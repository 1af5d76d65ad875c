"""``app.control``: remote control of the workers and the hub, as Celery's ``app.control``.

Every command goes through the hub to the nodes that match ``destination`` (all by default),
over the hub's ROUTER socket (never PUB, which drops); replies are collected until every
addressed node answered, ``limit`` replies came, or ``timeout`` passed. A node that does not
answer in time is listed in :attr:`Control.last_missing`, never waited for forever. See
:mod:`celeriac.transport.hub.control` (hub side) and :mod:`celeriac.runtime.control` (the
commands). ``revoke`` is the hub's durable revocation (issue 8).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import signals
from ._canvas_shapes import NO_STAMPING
from ._inspect import Inspect
from .routing import worker_queues

if TYPE_CHECKING:
    from ._app import App
    from ._protocol import TaskMessage

__all__ = ["Control", "Inspect", "sent_event"]

Destination = str | Sequence[str] | None

#: Ids per ``hub_revoked`` question (a control message stays small).
_REVOKED_CHUNK = 1000
#: Seconds to wait for the hub's ``hub_revoked`` answer.
_REVOKED_WAIT = 5.0


def _targets(destination: Destination) -> tuple[str, ...] | None:
    if destination is None:
        return None
    return (destination,) if isinstance(destination, str) else tuple(destination)


class Control:
    """Remote control of the workers and the hub through ``app``'s connection."""

    def __init__(self, app: App) -> None:
        self.app = app
        #: The nodes that did not answer the last request in time (or that the hub did not know).
        self.last_missing: list[str] = []

    def inspect(self, destination: Destination = None, timeout: float = 1.0, **kw: Any) -> Inspect:
        """Read-only questions to the workers (``active``, ``stats``...): see :class:`Inspect`."""
        return Inspect(self, _targets(destination), timeout, kw.get("limit"))

    def broadcast(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = 1.0,
        limit: int | None = None,
        **_: Any,
    ) -> list[dict[str, Any]] | None:
        """Send ``command`` to the nodes; with ``reply``, a list of ``{node: answer}`` (as
        Celery returns it), else None. Celery's ``connection``/``channel``/``pattern``
        arguments are accepted and ignored."""
        replies = self.request(command, arguments, destination, reply, timeout, limit)
        if not reply:
            return None
        return [{node: answer} for node, answer in replies.items()]

    def request(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Destination = None,
        reply: bool = True,
        timeout: float = 1.0,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Send ``command``; the answers by node (missing nodes in :attr:`last_missing`)."""
        from ._protocol import ControlRequest  # noqa: PLC0415 - one import per call is cheap

        request = ControlRequest(
            uuid.uuid4().hex, command, dict(arguments or {}), _targets(destination), reply
        )
        got = self.app._client().control(request, timeout, limit)
        self.last_missing = list(got.missing)
        return dict(got.replies)

    # -- Celery's control methods ----------------------------------------------------------------

    def _call(self, command: str, args: dict[str, Any], kw: dict[str, Any]) -> Any:
        return self.broadcast(
            command,
            args,
            kw.get("destination"),
            kw.get("reply", False),
            kw.get("timeout", 1.0),
            kw.get("limit"),
        )

    def ping(self, destination: Destination = None, timeout: float = 1.0, **kw: Any) -> Any:
        """Ping the nodes: ``[{node: {"ok": "pong"}}, ...]``."""
        return self.broadcast("ping", {}, destination, True, timeout, kw.get("limit"))

    def rate_limit(self, task_name: str, rate_limit: str | int | None, **kw: Any) -> Any:
        """Set a task type's rate limit on running workers (``"10/m"``; None/0: none)."""
        return self._call("rate_limit", {"task_name": task_name, "rate_limit": rate_limit}, kw)

    def time_limit(
        self, task_name: str, soft: float | None = None, hard: float | None = None, **kw: Any
    ) -> Any:
        """Set a task type's soft and hard time limits for its next runs."""
        return self._call("time_limit", {"task_name": task_name, "soft": soft, "hard": hard}, kw)

    def shutdown(self, **kw: Any) -> Any:
        """Warm shutdown of the nodes (give ``destination`` to stop only some)."""
        return self._call("shutdown", {}, kw)

    def pool_grow(self, n: int = 1, **kw: Any) -> Any:
        """Add ``n`` slots (prefork: children)."""
        return self._call("pool_grow", {"n": n}, kw)

    def pool_shrink(self, n: int = 1, **kw: Any) -> Any:
        """Remove ``n`` slots (prefork: children, as they become idle)."""
        return self._call("pool_shrink", {"n": n}, kw)

    def autoscale(self, max: int, min: int, **kw: Any) -> Any:
        """Set the autoscaler's bounds (prefork started with ``--autoscale``)."""
        return self._call("autoscale", {"max": max, "min": min}, kw)

    def add_consumer(self, queue: str, **kw: Any) -> Any:
        """Nodes start consuming ``queue`` without reconnecting."""
        return self._call("add_consumer", {"queue": queue}, kw)

    def cancel_consumer(self, queue: str, **kw: Any) -> Any:
        """Nodes stop consuming ``queue``."""
        return self._call("cancel_consumer", {"queue": queue}, kw)

    def enable_events(self, **kw: Any) -> Any:
        """Workers start sending task events."""
        return self._call("enable_events", {}, kw)

    def disable_events(self, **kw: Any) -> Any:
        """Workers stop sending task events."""
        return self._call("disable_events", {}, kw)

    def heartbeat(self, **kw: Any) -> Any:
        """Workers send a ``worker-heartbeat`` event now."""
        return self._call("heartbeat", {}, kw)

    def purge(self, queues: Sequence[str] | None = None, timeout: float = 5.0) -> int:
        """Remove the messages waiting at the hub in ``queues`` (None: this app's queues, as
        Celery's ``purge``), ready or delayed (not those a worker holds); how many."""
        names = list(queues) if queues is not None else self.app_queues()
        answer = self.request("purge", {"queues": names}, timeout=timeout).get("hub") or {}
        return int(answer.get("purged", 0))

    discard_all = purge

    def app_queues(self) -> list[str]:
        """The names of this app's queues (``task_queues``, else the default queue)."""
        return [q.name for q in worker_queues(self.app.conf, None, None)]

    def hub(self, what: str = "queues", timeout: float = 2.0) -> Any:
        """What the hub knows: ``queues`` (ready, delayed, unacked, consumers per queue),
        ``dead_letters`` or ``stats``."""
        return self.request(f"hub_{what}", {}, timeout=timeout).get("hub")

    def revoke(
        self,
        task_id: str | Sequence[str],
        destination: Sequence[str] | None = None,
        terminate: bool = False,
        signal: str = "SIGTERM",
        **_: Any,
    ) -> None:
        """Revoke tasks by id: queued or delayed ones are removed at the hub, later publishes
        under these ids are dropped, and the revocation is durable (it survives restarts of
        the hub) when this returns. A task a worker already holds ends REVOKED without running
        if it has not started; a running one finishes, unless ``terminate`` is set: then it is
        stopped (``-P prefork``: its child process gets ``signal``; threads: an exception
        raised in its thread; asyncio: cancelled; see celeriac.actors.terminate) and ends
        REVOKED. ``task_revoked`` is sent on the worker either way; for a task the hub removed
        before any worker held it (queued or delayed), it is sent here, in this process, before
        this returns (``request`` has its id and task name). ``destination`` is accepted
        for Celery's signature and ignored: revocations are held by the hub for every worker."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        if not ids:
            return
        client = self.app._client()
        client.revoke(ids, terminate, signal)
        # One round trip on the same connection: the hub answers after the commit that holds
        # the revocation, so it is durable once this returns.
        client.state(ids[-1])
        if signals.task_revoked.receivers:
            self._revoked_at_hub(ids)

    def revoke_by_stamped_headers(self, *args: Any, **kwargs: Any) -> None:
        """Refused (Celery 5.3's canvas stamping): see ``celeriac._canvas_shapes.NO_STAMPING``."""
        raise NotImplementedError(NO_STAMPING)

    def _revoked_at_hub(self, ids: list[str]) -> None:
        """Send ``task_revoked`` here for the tasks the hub removed before any worker held
        them (no worker will: it never sees them); ``request`` has their id and task name."""
        from ._request import Request  # noqa: PLC0415 - _task builds on the App

        for start in range(0, len(ids), _REVOKED_CHUNK):
            chunk = ids[start : start + _REVOKED_CHUNK]
            answer = self.request("hub_revoked", {"ids": chunk}, timeout=_REVOKED_WAIT)
            for item in answer.get("hub") or ():
                name = str(item.get("name") or "")
                queue = item.get("queue")
                request = Request(str(item.get("id")), name, delivery_info={"routing_key": queue})
                sender = self.app.tasks.get(name, name)
                signals.task_revoked.send(
                    sender=sender, request=request, terminated=False, signum=None, expired=False
                )


def sent_event(message: TaskMessage) -> dict[str, Any]:
    """The ``task-sent`` event of a publish (``task_send_sent_event``)."""
    return {
        "type": "task-sent",
        "timestamp": time.time(),
        "uuid": message.id,
        "name": message.task,
        "retries": message.retries,
        "eta": message.eta,
        "expires": message.expires,
        "queue": message.queue,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "root_id": message.root_id,
        "parent_id": message.parent_id,
    }
