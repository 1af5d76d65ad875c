"""A prefork node's answers to control commands: the parent speaks for the whole node.

The parent (:class:`~celeriac.runtime.prefork.PreforkNode`) joins the control channel under
the node's name; its children do not. It answers from what it supervises (the children, the
task each runs, their pids) and forwards what the children must apply themselves
(``add_consumer``, ``cancel_consumer``, ``time_limit``, ``enable_events``...) over their pipes
(``("control", command, arguments)``: each child's connection thread applies it, see
:meth:`~celeriac.runtime.worker.WorkerNode.control_local`). ``pool_grow``/``pool_shrink``
start or stop children at once; ``autoscale`` changes the bounds.

``active``, ``reserved`` and ``query_task`` need what only the children hold (each child has
its own connection to the hub and its own prefetched deliveries, with their arguments): the
parent asks every ready child (``("ask", id, command, arguments)``), each child's connection
thread answers over the pipe (``("answer", id, value)``), and the parent replies once all
children answered or :data:`CHILD_WAIT` seconds passed (it never blocks its loop on a child). A
child that did not answer in time still shows the task it runs, as the parent knows it (id,
name, pid; ``args``/``kwargs`` None).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from celeriac._app import App
from celeriac._limits import type_limits
from celeriac._wire_control2 import reply_messages
from celeriac.routing import worker_queues
from celeriac.transport import protocol as p

from .worker_control import worker_fields

if TYPE_CHECKING:
    from .prefork import PreforkNode

__all__ = ["CHILD_COMMANDS", "CHILD_WAIT", "PreforkView"]

#: The inspect commands a prefork parent answers with its children's help.
CHILD_COMMANDS: Final = frozenset({"active", "reserved", "query_task"})
#: How long the parent waits for its children's answers before it replies with what it has.
CHILD_WAIT: Final = 0.5


@dataclass(slots=True)
class _Ask:
    """A command asked of the children: whose answers are still awaited, and those given."""

    rid: str
    command: str
    arguments: dict[str, Any]
    deadline: float
    waiting: set[int]
    answers: dict[int, Any] = field(default_factory=dict)


class PreforkView:
    """The control commands' view of a prefork node (used in the parent's loop thread)."""

    def __init__(self, node: PreforkNode) -> None:
        self.node = node
        self.app: App = node.app
        self.hostname = node.hostname
        queues, exclude = node.options.queues, node.options.exclude_queues
        self._queues = [q.name for q in worker_queues(node.conf, queues, exclude)]
        self._asks: dict[int, _Ask] = {}
        self._ask_ids = itertools.count(1)

    def _tell(self, command: str, **arguments: Any) -> None:
        for slot in self.node._slots:
            if slot.conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    slot.conn.send(("control", command, arguments))

    # -- asking the children -----------------------------------------------------------------------

    def ask_children(self, msg: p.ControlCommand) -> bool:
        """Forward ``msg`` to the ready children if it is one of :data:`CHILD_COMMANDS` (True:
        the reply is sent later, by :meth:`child_answer` or :meth:`answer_due`)."""
        if msg.command not in CHILD_COMMANDS:
            return False
        self.node.panel.clock += 1
        ask_id = next(self._ask_ids)
        arguments = dict(msg.arguments)
        ask = _Ask(msg.rid, msg.command, arguments, time.monotonic() + CHILD_WAIT, set())
        for slot in self.node._slots:
            if slot.conn is not None and slot.ready:
                with contextlib.suppress(OSError, ValueError):
                    slot.conn.send(("ask", ask_id, msg.command, arguments))
                    ask.waiting.add(slot.index)
        self._asks[ask_id] = ask
        if not ask.waiting:
            self._reply(ask_id)
        return True

    def child_answer(self, index: int, ask_id: int, answer: Any) -> None:
        """Child ``index`` answered ``ask_id``: reply when it was the last one awaited."""
        ask = self._asks.get(ask_id)
        if ask is None or index not in ask.waiting:
            return  # late: the reply has gone
        ask.waiting.discard(index)
        ask.answers[index] = answer
        if not ask.waiting:
            self._reply(ask_id)

    def answer_due(self, now: float) -> None:
        """Reply to the asks whose children did not all answer within :data:`CHILD_WAIT`."""
        for ask_id in [i for i, ask in self._asks.items() if now >= ask.deadline]:
            self._reply(ask_id)

    def _reply(self, ask_id: int) -> None:
        ask = self._asks.pop(ask_id)
        value = self._combine(ask)
        for message in reply_messages(ask.rid, self.hostname, value):
            self.node._send(message)

    def _combine(self, ask: _Ask) -> Any:
        """The node's answer from its children's (in slot order), the parent's view of the
        children that did not answer."""
        requests: list[dict[str, Any]] = []
        found: dict[str, Any] = {}
        for index in sorted(ask.answers):
            answer = ask.answers[index]
            if isinstance(answer, list):
                requests.extend(r for r in answer if isinstance(r, dict))
            elif isinstance(answer, dict) and "error" not in answer:
                found.update(answer)
        silent = [s for s in self.node._slots if s.index in ask.waiting]
        if ask.command == "reserved":
            return [{**r, "hostname": self.hostname} for r in requests]
        fallback = self.active(silent)
        if ask.command == "active":
            return [{**r, "hostname": self.hostname} for r in [*requests, *fallback]]
        ids = ask.arguments.get("ids") or ask.arguments.get("id") or ()
        wanted = {ids} if isinstance(ids, str) else set(ids)
        for request in fallback:
            if request["id"] in wanted:
                found.setdefault(request["id"], ["active", request])
        return {
            tid: [kind, {**request, "hostname": self.hostname}]
            for tid, (kind, request) in found.items()
        }

    # -- inspect -----------------------------------------------------------------------------------

    def active(self, slots: list[Any] | None = None) -> list[dict[str, Any]]:
        """The tasks the children run, as the parent knows them (id, name, pid: the children
        add ``args``/``kwargs`` when asked, see :meth:`ask_children`)."""
        out = []
        for slot in self.node._slots if slots is None else slots:
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
        return []  # held by the children: asked of them (ask_children)

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
