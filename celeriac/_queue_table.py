"""The configured queues, resolved: each with its exchange, routing key and priority bound.

Routing runs once per sent task, so the resolved table is cached per configuration.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from celeriac._queues import Exchange, Queue, _check_exchange_type, _check_queue_name
from celeriac._routing_settings import check_task_queues, setting
from celeriac.exceptions import ImproperlyConfigured

__all__ = ["QueueTable", "configured_queues", "default_exchange", "queue_for", "queue_table"]


def default_exchange(conf: Mapping[str, Any]) -> Exchange:
    """The exchange of queues that name none: ``task_default_exchange`` (or the default queue)."""
    name = setting(conf, "task_default_exchange") or setting(conf, "task_default_queue")
    return Exchange(name, _check_exchange_type(setting(conf, "task_default_exchange_type")))


def _default_queue(conf: Mapping[str, Any]) -> Queue:
    name = setting(conf, "task_default_queue")
    return Queue(name, routing_key=setting(conf, "task_default_routing_key") or name)


def _resolve(conf: Mapping[str, Any], queue: Queue) -> Queue:
    max_priority = setting(conf, "task_queue_max_priority")
    return queue._resolved(default_exchange(conf), max_priority)


@dataclasses.dataclass(frozen=True)
class QueueTable:
    """The configured queues resolved once per configuration (cached: routing runs per call)."""

    configured: tuple[Queue, ...]
    by_name: Mapping[str, Queue]  # configured queues and the default queue
    exchanges: Mapping[str, Exchange]  # every exchange they use, the default one included


def queue_table(conf: Mapping[str, Any]) -> QueueTable:
    """The resolved queues and exchanges of ``conf`` (cached per configuration)."""
    return _build_queue_table(
        check_task_queues(setting(conf, "task_queues")),
        setting(conf, "task_default_queue"),
        setting(conf, "task_default_exchange"),
        setting(conf, "task_default_exchange_type"),
        setting(conf, "task_default_routing_key"),
        setting(conf, "task_queue_max_priority"),
    )


@functools.lru_cache(maxsize=64)
def _build_queue_table(
    queues: tuple[Queue, ...] | None,
    default_queue: str,
    exchange: str | None,
    exchange_type: str,
    routing_key: str | None,
    max_priority: int | None,
) -> QueueTable:
    conf = {
        "task_default_queue": default_queue,
        "task_default_exchange": exchange,
        "task_default_exchange_type": exchange_type,
        "task_default_routing_key": routing_key,
        "task_queue_max_priority": max_priority,
    }
    default = _resolve(conf, _default_queue(conf))
    configured = tuple(_resolve(conf, q) for q in queues) if queues else (default,)
    by_name = {default.name: default} | {q.name: q for q in configured}
    exchanges = {default_exchange(conf).name: default_exchange(conf)}
    exchanges |= {q.exchange.name: q.exchange for q in configured if q.exchange is not None}
    return QueueTable(configured, by_name, exchanges)


def configured_queues(conf: Mapping[str, Any]) -> list[Queue]:
    """``task_queues`` (or just the default queue when it is None), fully resolved."""
    return list(queue_table(conf).configured)


def queue_for(conf: Mapping[str, Any], queue: Queue | str) -> Queue:
    """The resolved queue for a Queue or a name (from task_queues, the default, or created).

    Raises ImproperlyConfigured for an unknown name when task_create_missing_queues is False.
    """
    if isinstance(queue, Queue):
        return _resolve(conf, queue)
    known = queue_table(conf).by_name.get(queue)
    if known is not None:
        return known
    if not setting(conf, "task_create_missing_queues"):
        raise ImproperlyConfigured(
            f"queue {queue!r} is not in task_queues and task_create_missing_queues is False"
        )
    return _resolve(conf, Queue(_check_queue_name(queue), Exchange(queue, "direct"), queue))
