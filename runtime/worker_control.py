"""A thread worker's answers to control commands, and the events it sends (issue 9).

:class:`WorkerView` is the :class:`~celeriac.runtime.control.NodeView` of a
:class:`~celeriac.runtime.worker.WorkerNode` (threads, solo, asyncio; also each prefork child,
for the commands its parent forwards): it reads the connection's ledger (running, prefetched
and gated deliveries) and changes queues, limits and events from the connection thread, the
only thread that touches the socket. It also builds the worker's events in Celery's shapes
(``task-received``, ``task-started``, ``task-succeeded``/``-failed``/``-retried``/``-rejected``
with runtime and result or exception, ``worker-heartbeat``), sent to the hub in one ``EVENTS``
message per connection turn.
"""

from __future__ import annotations

import os
import platform
import time
from typing import TYPE_CHECKING, Any

import msgpack

from celeriac import __version__, states
from celeriac._app import App
from celeriac._limits import type_limits
from celeriac._serialization import loads, normalize_accept
from celeriac._wire_control import MAX_EVENTS_BYTES
from celeriac.actors.task_actor import Delivery
from celeriac.transport import protocol as p

if TYPE_CHECKING:
    from .connection import HubConnection
    from .worker import WorkerNode

__all__ = ["WorkerView", "request_info", "worker_fields"]

_OUTCOME_EVENTS = {
    states.SUCCESS: "task-succeeded",
    states.FAILURE: "task-failed",
    states.RETRY: "task-retried",
    states.REJECTED: "task-rejected",
    states.REVOKED: "task-revoked",
}
_REPR = 1024
_TRACE = 8192  # the end of a traceback, where the error is


def worker_fields(hostname: str, freq: float) -> dict[str, Any]:
    """The fields every worker event carries (Celery's)."""
    return {
        "hostname": hostname,
        "freq": freq,
        "sw_ident": "celeriac",
        "sw_ver": __version__,
        "sw_sys": platform.system(),
        "pid": os.getpid(),
    }


def _args(delivery: Delivery, accept: frozenset[str]) -> tuple[Any, Any]:
    try:
        args, kwargs, *_ = loads(delivery.task.body, delivery.task.content_type, accept)
    except Exception:
        return "?", "?"
    return args, kwargs


def request_info(
    delivery: Delivery,
    hostname: str,
    accept: frozenset[str],
    *,
    started: float | None,
    pid: int | None,
) -> dict[str, Any]:
    """A delivery in Celery's request shape (``inspect active``/``reserved``)."""
    task = delivery.task
    args, kwargs = _args(delivery, accept)
    return {
        "id": task.id,
        "name": task.task,
        "args": args,
        "kwargs": kwargs,
        "type": task.task,
        "hostname": hostname,
        "time_start": started,
        "acknowledged": started is not None,
        "delivery_info": {
            "exchange": task.exchange or "",
            "routing_key": task.routing_key or delivery.queue,
            "priority": task.priority or 0,
            "redelivered": delivery.deliveries > 1,
        },
        "worker_pid": pid,
    }


class WorkerView:
    """The control commands' view of one worker node and its connection."""

    def __init__(self, node: WorkerNode, conn: HubConnection) -> None:
        self.node = node
        self.conn = conn
        self.app: App = node.app
        self.hostname = node.hostname
        self.accept = normalize_accept(node.conf.accept_content)
        self.events: list[dict[str, Any]] = []

    # -- inspect -----------------------------------------------------------------------------------

    def active(self) -> list[dict[str, Any]]:
        out = []
        for index, delivery in list(self.conn.session.busy.items()):
            started = self.node.started_at.get(index)
            out.append(self._info(delivery, started or time.time()))
        return out

    def reserved(self) -> list[dict[str, Any]]:
        session = self.conn.session
        gated = session.gated
        queued = [d for waiting in session.queued.values() for d in waiting]  # in the slots
        held = [*queued, *session.buffer, *gated.ready, *gated.waiting.values()]
        return [self._info(d, None) for d in held]

    def _info(self, delivery: Delivery, started: float | None) -> dict[str, Any]:
        pid = os.getpid() if started is not None else None
        return request_info(delivery, self.hostname, self.accept, started=started, pid=pid)

    def stats(self) -> dict[str, Any]:
        node = self.node
        return {
            "pool": {
                "implementation": node.pool_name,
                "max-concurrency": node.concurrency,
                "processes": [os.getpid()],
                "busy": len(self.conn.session.busy),
                "prefetched": len(self.conn.session.buffer)  # and those waiting in slots
                + sum(len(waiting) for waiting in self.conn.session.queued.values()),
            },
            "prefetch_count": self.conn.session.window.size,  # grows while tasks are quick
            "total": dict(node.processed),
            "connection": {"restarts": node.connection_restarts, "hub": self.conn.session.hub_id},
            "events_enabled": node.send_events,
        }

    def queues(self) -> list[str]:
        return list(self.node.queues)

    # -- control -----------------------------------------------------------------------------------

    def add_consumer(self, queue: str) -> None:
        node = self.node
        node.queues.append(queue)
        more = p.QueueDecl(queue)
        known = node.declarations
        node.declarations = p.Declare(known.exchanges, (*known.queues, more))
        self.conn.send(p.Declare((), (more,)))
        self.conn.perform(self.conn.session.set_queues(tuple(node.queues), node.declarations))

    def cancel_consumer(self, queue: str) -> None:
        node = self.node
        node.queues = [q for q in node.queues if q != queue]
        self.conn.perform(self.conn.session.set_queues(tuple(node.queues), node.declarations))

    def rate_limit(self, task: str, rate: str | None) -> None:
        setattr(self.app.tasks[task], "rate_limit", rate)  # noqa: B010 - a ClassVar
        retune = getattr(self.node.types, "retune", None)
        if retune is None:
            raise NotImplementedError("rate limits of this node's pool cannot change at run time")
        retune(task, type_limits(self.app.tasks[task], self.node.conf))

    def time_limit(self, task: str, soft: float | None, hard: float | None) -> None:
        target = self.app.tasks[task]
        setattr(target, "soft_time_limit", soft)  # noqa: B010 - ClassVars of the task
        setattr(target, "time_limit", hard)  # noqa: B010

    def shutdown(self) -> None:
        self.node.request_shutdown()

    def resize(self, grow: int) -> int:
        raise NotImplementedError(
            f"the {self.node.pool_name} pool has a fixed size; -P prefork grows and shrinks"
        )

    def autoscale(self, high: int, low: int) -> tuple[int, int]:
        raise NotImplementedError(
            f"the {self.node.pool_name} pool has a fixed size and does not autoscale; "
            "-P prefork --autoscale MAX,MIN does"
        )

    def set_events(self, enabled: bool) -> None:
        self.node.send_events = enabled

    def heartbeat(self) -> None:
        processed = sum(self.node.processed.values())
        self.event(
            "worker-heartbeat",
            active=len(self.conn.session.busy),
            processed=processed,
            loadavg=list(os.getloadavg()),
            **worker_fields(self.hostname, self.conn.session.config.heartbeat),
        )

    # -- events ------------------------------------------------------------------------------------

    def event(self, kind: str, **fields: Any) -> None:
        """Queue an event for this turn's ``EVENTS`` message."""
        self.events.append({"type": kind, "timestamp": time.time(), **fields})

    def flush_events(self) -> None:
        """Send the events of this turn: one message, or several under
        :data:`~celeriac._wire_control.MAX_EVENTS_BYTES` each."""
        if not self.events:
            return
        events, self.events = self.events, []
        batch: list[dict[str, Any]] = []
        size = 0
        for event in events:
            n = len(msgpack.packb(event, use_bin_type=True, default=repr))
            if batch and size + n > MAX_EVENTS_BYTES:
                self.conn.send(p.EventBatch(tuple(batch)))
                batch, size = [], 0
            batch.append(event)
            size += n
        self.conn.send(p.EventBatch(tuple(batch)))

    def received(self, delivery: Delivery) -> None:
        """``task-received`` (task events on)."""
        task = delivery.task
        args, kwargs = _args(delivery, self.accept)
        self.event(
            "task-received",
            uuid=task.id,
            name=task.task,
            args=repr(args)[:_REPR],
            kwargs=repr(kwargs)[:_REPR],
            root_id=task.root_id,
            parent_id=task.parent_id,
            retries=task.retries,
            eta=task.eta,
            expires=task.expires,
            hostname=self.hostname,
        )

    def started(self, delivery: Delivery) -> None:
        """``task-started`` (task events on)."""
        self.event("task-started", uuid=delivery.task.id, hostname=self.hostname, pid=os.getpid())

    def finished(self, delivery: Delivery, frames: list[bytes], began: float | None) -> None:
        """The outcome event of a finished delivery (read from its ``DONE`` frames)."""
        try:
            message = p.decode(frames)
        except Exception:
            return
        if not isinstance(message, p.Done):
            return
        result = message.results[0]
        kind = _OUTCOME_EVENTS.get(result.state)
        if kind is None:
            return
        fields: dict[str, Any] = {"uuid": delivery.task.id, "hostname": self.hostname}
        try:
            value = loads(result.body, result.content_type, self.accept)
        except Exception:
            value = None
        if result.state == states.SUCCESS:
            fields["result"] = repr(value)[:_REPR]
            fields["runtime"] = None if began is None else round(time.time() - began, 6)
        elif isinstance(value, dict):
            exc_type = value.get("exc_type", "Exception")
            message_args = value.get("exc_message") or ()
            shown = ", ".join(repr(a) for a in message_args)
            fields["exception"] = f"{exc_type}({shown})"[:_REPR]
            trace = value.get("traceback")
            fields["traceback"] = trace[-_TRACE:] if isinstance(trace, str) else None
            if result.state == states.REJECTED:
                fields["requeue"] = False
        self.event(kind, **fields)
