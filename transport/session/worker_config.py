"""What a worker session is told about its worker: names, queues, slots and timings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from celeriac import _protocol as p

__all__ = ["WorkerConfig", "ungated"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker tells the hub about itself, and its timings.

    ``tracked`` gives a task name's own ``track_started`` option (None: it has none, the
    worker's applies), read when its delivery starts;
    ``control`` is the name the node answers remote control under (None: a prefork child,
    whose parent answers for it); ``extended`` is ``result_extended``; ``run_ahead`` is how
    many deliveries a busy slot may hold waiting behind its running one (0: none; the pool
    says what it can take, see ``Pool.run_ahead``); ``prefetch`` is the least the worker holds
    and ``prefetch_window`` the seconds of work per slot it may hold beyond that while its tasks
    are quick (0: exactly ``prefetch``; see :mod:`.window`).
    """

    node: str
    endpoint: str
    queues: tuple[str, ...]
    slots: int
    prefetch: int
    heartbeat: float
    giveback: float
    pid: int | None = None
    on_lost: p.OnLost = "requeue"
    declare: p.Declare | None = None
    track_started: bool = False
    tracked: Callable[[str], bool | None] = lambda name: None
    extended: bool = False
    control: str | None = None
    run_ahead: int = 0
    prefetch_window: float = 0.0


def ungated(delivery: p.Delivery) -> bool:
    """No task type decides when its deliveries run (the default gate)."""
    return False
