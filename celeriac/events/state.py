"""An in-memory picture of the cluster built from events (Celery's ``events.state.State``).

Pure: feed it event maps (:meth:`State.event`) in the order they came; it keeps each task's
latest state and fields and each worker's liveness and counters. A task's state never goes
back from a final state (SUCCESS, FAILURE, REVOKED, REJECTED) to an earlier one, so the hub's
own copy of an outcome or a late ``task-started`` changes nothing.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from celeriac import states

__all__ = ["TASK_EVENT_STATES", "State", "TaskView", "WorkerView"]

#: The task state each task event means.
TASK_EVENT_STATES: Final = {
    "task-sent": states.PENDING,
    "task-received": states.RECEIVED,
    "task-started": states.STARTED,
    "task-succeeded": states.SUCCESS,
    "task-failed": states.FAILURE,
    "task-retried": states.RETRY,
    "task-rejected": states.REJECTED,
    "task-revoked": states.REVOKED,
}
_FINAL: Final = frozenset({states.SUCCESS, states.FAILURE, states.REVOKED, states.REJECTED})
_ORDER: Final = {s: i for i, s in enumerate(TASK_EVENT_STATES.values())}
_TASK_FIELDS: Final = (
    "name",
    "args",
    "kwargs",
    "hostname",
    "result",
    "runtime",
    "exception",
    "traceback",
    "eta",
    "expires",
    "retries",
    "root_id",
    "parent_id",
    "routing_key",
    "queue",
)


@dataclass
class TaskView:
    """What the events said of one task."""

    uuid: str
    state: str = states.PENDING
    name: str | None = None
    hostname: str | None = None
    args: Any = None
    kwargs: Any = None
    result: Any = None
    runtime: float | None = None
    exception: str | None = None
    traceback: str | None = None
    eta: Any = None
    expires: Any = None
    retries: int | None = None
    root_id: str | None = None
    parent_id: str | None = None
    routing_key: str | None = None
    queue: str | None = None
    timestamp: float | None = None
    #: When each state was first seen: ``{"STARTED": ts, ...}``.
    seen: dict[str, float] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """True once the task reached a final state."""
        return self.state in _FINAL


@dataclass
class WorkerView:
    """What the events said of one worker."""

    hostname: str
    alive: bool = False
    last_heartbeat: float | None = None
    active: int = 0
    processed: int = 0
    loadavg: Any = None
    freq: float | None = None
    sw_ident: str | None = None
    sw_ver: str | None = None
    queues: Any = None
    pid: int | None = None


class State:
    """Tasks, workers and counts built from events; see the module docstring."""

    def __init__(self, max_tasks_in_memory: int = 10_000) -> None:
        self.max_tasks_in_memory = max_tasks_in_memory
        self.tasks: OrderedDict[str, TaskView] = OrderedDict()
        self.workers: dict[str, WorkerView] = {}
        self.event_count = 0
        self.task_count = 0
        self.counts: Counter[str] = Counter()

    def event(self, event: Mapping[str, Any]) -> None:
        """Apply one event map."""
        self.event_count += 1
        kind = str(event.get("type", ""))
        self.counts[kind] += 1
        if kind.startswith("task-"):
            self._task_event(kind, event)
        elif kind.startswith("worker-"):
            self._worker_event(kind, event)

    def freeze_while(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Celery's API: call ``fun`` (nothing runs concurrently with a plain State)."""
        return fun(*args, **kwargs)

    def _task_event(self, kind: str, event: Mapping[str, Any]) -> None:
        uuid = event.get("uuid")
        if not isinstance(uuid, str):
            return
        task = self.tasks.get(uuid)
        if task is None:
            task = self.tasks[uuid] = TaskView(uuid)
            self.task_count += 1
            while len(self.tasks) > self.max_tasks_in_memory:
                self.tasks.popitem(last=False)
        state = TASK_EVENT_STATES.get(kind)
        ts = event.get("timestamp")
        if state is not None:
            task.seen.setdefault(state, ts if isinstance(ts, int | float) else 0.0)
            if not task.ready and (
                state in _FINAL or _ORDER.get(state, 0) >= _ORDER.get(task.state, 0)
            ):
                task.state = state
                task.timestamp = ts if isinstance(ts, int | float) else task.timestamp
        for name in _TASK_FIELDS:
            value = event.get(name)
            if value is not None:
                setattr(task, name, value)

    def _worker_event(self, kind: str, event: Mapping[str, Any]) -> None:
        hostname = event.get("hostname")
        if not isinstance(hostname, str):
            return
        worker = self.workers.get(hostname)
        if worker is None:
            worker = self.workers[hostname] = WorkerView(hostname)
        worker.alive = kind != "worker-offline"
        if kind == "worker-heartbeat":
            ts = event.get("timestamp")
            worker.last_heartbeat = ts if isinstance(ts, int | float) else None
        for name in ("active", "processed", "loadavg", "freq", "sw_ident", "sw_ver", "queues"):
            value = event.get(name)
            if value is not None:
                setattr(worker, name, value)

    # -- reading ---------------------------------------------------------------------------------

    def itertasks(self, limit: int | None = None) -> Iterator[tuple[str, TaskView]]:
        """``(uuid, task)`` pairs, newest first."""
        for i, item in enumerate(reversed(self.tasks.items())):
            if limit is not None and i >= limit:
                return
            yield item

    def tasks_by_state(self) -> dict[str, int]:
        """How many known tasks are in each state."""
        return dict(Counter(t.state for t in self.tasks.values()))

    def tasks_by_type(self, name: str) -> list[TaskView]:
        """The known tasks of task type ``name``."""
        return [t for t in self.tasks.values() if t.name == name]

    def tasks_by_worker(self) -> dict[str, dict[str, int]]:
        """Per worker: how many of its tasks are in each state."""
        out: dict[str, Counter[str]] = {}
        for task in self.tasks.values():
            out.setdefault(task.hostname or "?", Counter())[task.state] += 1
        return {host: dict(c) for host, c in out.items()}

    def alive_workers(self) -> list[WorkerView]:
        """The workers last seen online."""
        return [w for w in self.workers.values() if w.alive]
