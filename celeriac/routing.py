"""Queues, exchanges and task routes: where a task message goes (pure, no sockets).

Celery users find kombu's ``Queue``/``Exchange`` and Celery's routing settings here, with the
same names and meanings, and a few sharp edges filed off (noted below).

Route precedence
----------------
:func:`resolve_route` merges four layers, highest first:

=====================  ==========================================================
1. call options        ``apply_async(queue=..., exchange=..., routing_key=..., priority=...)``
2. task routes         ``task_routes``: routers in order, the first non-None answer
3. task options        ``@app.task(queue=..., exchange=..., routing_key=..., priority=...)``
4. defaults            ``task_default_queue``, ``task_default_priority``
=====================  ==========================================================

A layer that names a ``queue`` replaces the destination of the layers below it: the exchange and
routing key then come from that queue (resolved through ``task_queues``) unless the same or a
higher layer gives them. A layer that gives only ``exchange`` or ``routing_key`` refines the
destination below it (handy on topic exchanges). ``priority`` is taken from the highest layer
that gives one. An unknown queue name is created as a direct exchange named like the queue with
the queue's name as routing key when ``task_create_missing_queues`` is true (Celery's rule), and
is an :class:`~celeriac.exceptions.ImproperlyConfigured` error otherwise.

``task_routes`` is compiled by :mod:`celeriac._task_routes`; ``Queue``, ``Exchange`` and
``Broadcast`` live in :mod:`celeriac._queues`, the resolved queues in
:mod:`celeriac._queue_table` (all re-exported here); the settings are declared in
:mod:`celeriac._routing_settings`.

Unroutable messages
-------------------
``task_unroutable`` says what the hub does with a message no queue binds: ``"error"`` (default)
refuses the publish with :class:`~celeriac.exceptions.PublishError`; ``"dead_letter"`` keeps it
in the hub's dead-letter queue (``celeriac.unroutable``) and confirms it. Never silently dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from celeriac._queue_table import configured_queues, default_exchange, queue_for, queue_table
from celeriac._queues import (
    EXCHANGE_TYPES,
    UNROUTABLE_DEAD_LETTER,
    UNROUTABLE_ERROR,
    Broadcast,
    Exchange,
    Queue,
    _check_priority,
)
from celeriac._routing_settings import setting
from celeriac._task_routes import MapRoute, Routes, _as_route, compile_routes
from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "EXCHANGE_TYPES",
    "UNROUTABLE_DEAD_LETTER",
    "UNROUTABLE_ERROR",
    "Broadcast",
    "Exchange",
    "MapRoute",
    "Queue",
    "Route",
    "Routes",
    "compile_routes",
    "configured_queues",
    "declarations",
    "declare_queues",
    "default_exchange",
    "queue_for",
    "resolve_route",
    "worker_queues",
]

# -- routes ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Route:
    """Where one message goes: the exchange and key to publish with, and its priority.

    ``queue`` names the queue the routing options chose (None for a broadcast); the hub routes
    by ``exchange`` and ``routing_key`` only.
    """

    exchange: str
    exchange_type: str
    routing_key: str
    queue: str | None
    priority: int | None


@dataclasses.dataclass
class _Destination:
    """The merge state while walking the layers from lowest to highest precedence."""

    queue: Queue | str
    exchange: Exchange | str | None = None
    routing_key: str | None = None
    priority: int | None = None

    def apply(self, options: Mapping[str, Any], where: str) -> None:
        """Overlay one layer's routing options."""
        queue = options.get("queue")
        if queue is not None:
            if not isinstance(queue, Queue | str):
                raise ImproperlyConfigured(f"{where}: queue must be a Queue or a name: {queue!r}")
            self.queue, self.exchange, self.routing_key = queue, None, None
        exchange = options.get("exchange")
        if exchange is not None:
            if not isinstance(exchange, Exchange | str):
                raise ImproperlyConfigured(f"{where}: exchange must be an Exchange or a name")
            self.exchange = exchange
        key = options.get("routing_key")
        if key is not None:
            if not isinstance(key, str):
                raise ImproperlyConfigured(f"{where}: routing_key must be a string: {key!r}")
            self.routing_key = key
        priority = _check_priority(options.get("priority"), f"{where}: priority")
        if priority is not None:
            self.priority = priority


def _ask_routers(
    conf: Mapping[str, Any],
    task_name: str,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    options: dict[str, Any],
    task: Any,
) -> dict[str, Any]:
    """The first non-None answer of the task_routes routers, as an option dict ({} if none)."""
    for router in compile_routes(setting(conf, "task_routes")):
        answer = router(task_name, args, kwargs, options, task=task)
        if answer is not None:
            return _as_route(answer, f"router {router!r} for {task_name!r}")
    return {}


def _exchange_of(conf: Mapping[str, Any], exchange: Exchange | str) -> Exchange:
    """An Exchange for an explicit exchange option; a bare name takes a known type if any."""
    if isinstance(exchange, Exchange):
        return exchange
    return queue_table(conf).exchanges.get(exchange) or Exchange(exchange)


def resolve_route(
    conf: Mapping[str, Any],
    task_name: str,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    call_options: Mapping[str, Any],
    task_options: Mapping[str, Any],
    *,
    task: Any = None,
) -> Route:
    """Decide exchange, routing key, queue and priority for one task message.

    Precedence, highest first: call options, task_routes, task options, defaults (see the
    module docs for how the layers merge). ``task`` is passed to routers as ``task=``.
    """
    dest = _Destination(
        queue=setting(conf, "task_default_queue"),
        priority=_check_priority(setting(conf, "task_default_priority"), "task_default_priority"),
    )
    dest.apply(task_options, f"task {task_name!r} options")
    router_options = {**task_options, **call_options}
    routed = _ask_routers(conf, task_name, args, kwargs, options=router_options, task=task)
    dest.apply(routed, "task_routes")
    dest.apply(call_options, "call options")
    return _finish(conf, dest)


def _finish(conf: Mapping[str, Any], dest: _Destination) -> Route:
    queue = queue_for(conf, dest.queue)
    assert queue.exchange is not None  # queue_for resolves it
    exchange = _exchange_of(conf, dest.exchange) if dest.exchange is not None else queue.exchange
    key = dest.routing_key if dest.routing_key is not None else queue.routing_key
    assert key is not None  # queue_for resolves it
    name = None if isinstance(queue, Broadcast) else queue.name
    return Route(exchange.name, exchange.type, key, name, dest.priority)


# -- declarations ------------------------------------------------------------------------------


def declare_queues(
    conf: Mapping[str, Any], queues: Iterable[Queue], node_name: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The exchange and queue declarations (wire form) for ``queues``.

    A Broadcast contributes its fanout exchange, plus its per-node queue when ``node_name`` is
    given (a worker); clients declare only the exchange. Conflicting definitions of one exchange
    or queue raise ImproperlyConfigured here rather than at the hub.
    """
    exchanges: dict[str, dict[str, Any]] = {}
    declared: dict[str, dict[str, Any]] = {}
    for queue in _declared_queues(conf, queues, node_name):
        assert queue.exchange is not None  # queue_for resolves it
        _add_unique(exchanges, queue.exchange.as_declaration(), "exchange")
        if not isinstance(queue, Broadcast):
            _add_unique(declared, queue.as_declaration(), "queue")
    return list(exchanges.values()), list(declared.values())


def _declared_queues(
    conf: Mapping[str, Any], queues: Iterable[Queue], node_name: str | None
) -> list[Queue]:
    out: list[Queue] = []
    for queue in queues:
        resolved = queue_for(conf, queue)
        out.append(resolved)
        if isinstance(resolved, Broadcast) and node_name is not None:
            out.append(resolved.node_queue(node_name))
    return out


def _add_unique(into: dict[str, dict[str, Any]], decl: dict[str, Any], what: str) -> None:
    known = into.setdefault(decl["name"], decl)
    if known != decl:
        raise ImproperlyConfigured(f"{what} {decl['name']!r} is defined twice: {known} vs {decl}")


def declarations(conf: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a client declares from its configuration: task_queues (or the default queue)."""
    return declare_queues(conf, configured_queues(conf))


def worker_queues(
    conf: Mapping[str, Any], include: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[Queue]:
    """The queues a worker consumes, for ``-Q a,b`` (include) and ``-X c`` (exclude).

    Without ``include``: every configured queue. A name in ``include`` that is not configured is
    created (task_create_missing_queues) or rejected. A name in ``exclude`` that is not among the
    selected queues is an error (a typo would otherwise consume what the user meant to skip), and
    so is excluding every queue.
    """
    selected = (
        [queue_for(conf, name) for name in dict.fromkeys(include)]
        if include
        else configured_queues(conf)
    )
    names = {q.name for q in selected}
    unknown = sorted(set(exclude or ()) - names)
    if unknown:
        raise ImproperlyConfigured(
            f"cannot exclude unknown queues {unknown}; known queues: {sorted(names)}"
        )
    kept = [q for q in selected if q.name not in set(exclude or ())]
    if not kept:
        raise ImproperlyConfigured(f"no queue left to consume: -X excludes all of {sorted(names)}")
    return kept
