"""A prefork node's answers to control commands: the parent speaks for the whole node.

The parent (:class:`~celeriac.runtime.prefork.PreforkNode`) joins the control channel under
the node's name; its children do not. It answers from what it supervises (the children, the
task each runs, their pids) and forwards what the children must apply themselves
(``add_consumer``, ``cancel_consumer``, ``time_limit``, ``enable_events``...) over their pipes
(``("control", command, arguments)``: each child's connection thread applies it, see
:meth:`~celeriac.runtime.worker.WorkerNode.control_local`). ``pool_grow``/``pool_shrink``
start or stop children at once; ``autoscale`` changes the bounds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

from celeriac._app import App
from celeriac._limits import type_limits
from celeriac.routing import worker_queues
from celeriac.transport import protocol as p

from .worker_control import worker_fields

if TYPE_CHECKING:
    from .prefork import PreforkNode

__all__ = ["PreforkView"]


class PreforkView:
    """The control commands' view of a prefork node (used in the parent's loop thread)."""

    def __init__(self, node: PreforkNode) -> None:
        self.node = node
        self.app: App = node.app
        self.hostname = node.hostname
        queues, exclude = node.options.queues, node.options.exclude_queues
        self._queues = [q.name for q in worker_queues(node.conf, queues, exclude)]

    def _tell(self, command: str, **arguments: Any) -> None:
        for slot in self.node._slots:
            if slot.conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    slot.conn.send(("control", command, arguments))

    def active(self) -> list[dict[str, Any]]:
        out = []
        for slot in self.node._slots:
            task = slot.task
            if task is None:
                continue
            out.append(
                {
                    "id": task.id,
                    "name": task.name,
                    "args": None,  # held by the child; the parent sees id and name
                    "kwargs": None,
                    "type": task.name,
                    "hostname": self.hostname,
                    "time_start": time.time() - (time.monotonic() - task.since),
                    "acknowledged": True,
                    "delivery_info": {"redelivered": False},
                    "worker_pid": slot.pid,
                }
            )
        return out

    def reserved(self) -> list[dict[str, Any]]:
        return []  # each child holds at most the one delivery it runs

    def stats(self) -> dict[str, Any]:
        stats = self.node.statistics()
        return {
            "pool": {
                "implementation": "prefork",
                "max-concurrency": self.node.concurrency,
                **stats,
            },
            "total": dict(self.node.processed),
        }

    def queues(self) -> list[str]:
        return list(self._queues)

    def _set_queues(self, queues: list[str]) -> None:
        self._queues = queues
        node = self.node
        node.options = dataclasses.replace(node.options, queues=list(queues), exclude_queues=None)

    def add_consumer(self, queue: str) -> None:
        self._set_queues([*self._queues, queue])
        self._tell("add_consumer", queue=queue)

    def cancel_consumer(self, queue: str) -> None:
        self._set_queues([q for q in self._queues if q != queue])
        self._tell("cancel_consumer", queue=queue)

    def rate_limit(self, task: str, rate: str | None) -> None:
        setattr(self.app.tasks[task], "rate_limit", rate)  # noqa: B010 - a ClassVar
        self.node.gates.types.retune(task, type_limits(self.app.tasks[task], self.node.conf))
        self._tell("rate_limit", task_name=task, rate_limit=rate)

    def time_limit(self, task: str, soft: float | None, hard: float | None) -> None:
        target = self.app.tasks[task]
        setattr(target, "soft_time_limit", soft)  # noqa: B010 - ClassVars of the task
        setattr(target, "time_limit", hard)  # noqa: B010
        self._tell("time_limit", task_name=task, soft=soft, hard=hard)

    def shutdown(self) -> None:
        self.node.request_shutdown()

    def resize(self, grow: int) -> int:
        return self.node.resize(grow)

    def autoscale(self, high: int, low: int) -> tuple[int, int]:
        return self.node.set_autoscale(high, low)

    def set_events(self, enabled: bool) -> None:
        self.node.send_events = enabled
        self._tell("enable_events" if enabled else "disable_events")

    def lifecycle(self, kind: str) -> None:
        """``worker-online``/``worker-offline`` of the node, with Celery's fields."""
        event = {"type": kind, "timestamp": time.time(), "queues": self.queues()}
        event.update(worker_fields(self.hostname, float(self.node.conf.broker_heartbeat)))
        self.node._send(p.EventBatch((event,)))

    def heartbeat(self) -> None:
        slots = self.node._slots
        event = {
            "type": "worker-heartbeat",
            "timestamp": time.time(),
            "active": sum(1 for s in slots if s.task is not None),
            "processed": sum(s.tasks for s in slots),
            "loadavg": list(os.getloadavg()),
            **worker_fields(self.hostname, float(self.node.conf.broker_heartbeat)),
        }
        self.node._send(p.EventBatch((event,)))
