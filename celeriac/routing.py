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
``Broadcast`` live in :mod:`celeriac._queues` (all re-exported here).

Unroutable messages
-------------------
``task_unroutable`` says what the hub does with a message no queue binds: ``"error"`` (default)
refuses the publish with :class:`~celeriac.exceptions.PublishError`; ``"dead_letter"`` keeps it
in the hub's dead-letter queue (``celeriac.unroutable``) and confirms it. Never silently dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from celeriac._conf import choice_check, declare, parse_bool, parse_int, parse_optional
from celeriac._queues import (
    _UNROUTABLE_CHOICES,
    EXCHANGE_TYPES,
    UNROUTABLE_DEAD_LETTER,
    UNROUTABLE_ERROR,
    Broadcast,
    Exchange,
    Queue,
    _check_exchange_type,
    _check_priority,
    _check_queue_name,
)
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

#: Defaults used when ``conf`` is a plain mapping that lacks a setting (tests, tools).
_DEFAULTS: Final[Mapping[str, Any]] = {
    "task_default_queue": "celery",
    "task_queues": None,
    "task_default_exchange": None,
    "task_default_exchange_type": "direct",
    "task_default_routing_key": None,
    "task_routes": None,
    "task_create_missing_queues": True,
    "task_default_priority": None,
    "task_queue_max_priority": None,
}


# -- settings ----------------------------------------------------------------------------------


def _check_task_queues(value: Any) -> tuple[Queue, ...] | None:
    """None, a Queue, or a list/tuple of Queues with distinct names -> a tuple (or None)."""
    if value is None:
        return None
    items = [value] if isinstance(value, Queue) else value
    if not isinstance(items, list | tuple) or not all(isinstance(q, Queue) for q in items):
        raise ImproperlyConfigured(f"task_queues must be a list of Queue objects, not {value!r}")
    names = [q.name for q in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ImproperlyConfigured(f"task_queues names these queues more than once: {dupes}")
    return tuple(items)


def _parse_task_queues(text: str) -> tuple[Queue, ...]:
    """``CELERIAC_TASK_QUEUES="a,b"`` -> ``(Queue("a"), Queue("b"))``."""
    return tuple(Queue(n.strip()) for n in text.split(",") if n.strip())


def _check_optional_name(what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or (isinstance(value, str) and value):
            return value
        raise ImproperlyConfigured(f"{what} must be a non-empty string or None, not {value!r}")

    return check


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"expected True or False, not {value!r}")
    return value


def _parse_routes(text: str) -> Any:
    """``CELERIAC_TASK_ROUTES`` holds JSON: a dict or a list of dicts."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ImproperlyConfigured(f"task_routes from the environment is not JSON: {exc}") from None


TASK_QUEUES = declare(
    "task_queues",
    None,
    "The queues this app knows (a list of Queue); None: just task_default_queue. Workers consume "
    "all of them unless -Q/-X says otherwise.",
    parse=parse_optional(_parse_task_queues),
    check=_check_task_queues,
)
TASK_DEFAULT_EXCHANGE = declare(
    "task_default_exchange",
    None,
    "Exchange of queues that name none, and of the default queue; None: task_default_queue.",
    parse=parse_optional(str),
    check=_check_optional_name("task_default_exchange"),
)
TASK_DEFAULT_EXCHANGE_TYPE = declare(
    "task_default_exchange_type",
    "direct",
    "Type of the default exchange: direct, topic or fanout.",
    check=_check_exchange_type,
)
TASK_DEFAULT_ROUTING_KEY = declare(
    "task_default_routing_key",
    None,
    "Routing key of the default queue when task_queues is None; None: task_default_queue.",
    parse=parse_optional(str),
    check=_check_optional_name("task_default_routing_key"),
)
TASK_ROUTES = declare(
    "task_routes",
    None,
    "Routers asked in order for a task's queue/exchange/routing_key/priority: a dict (exact "
    "names, globs, re.compile patterns -> options or queue name), a callable, or a list.",
    parse=_parse_routes,
    check=compile_routes,
)
TASK_CREATE_MISSING_QUEUES = declare(
    "task_create_missing_queues",
    True,
    "Create a queue named by a route but missing from task_queues (direct, key = its name).",
    parse=parse_bool,
    check=_check_bool,
)
TASK_UNROUTABLE = declare(
    "task_unroutable",
    UNROUTABLE_ERROR,
    "What the hub does with a message no queue binds: 'error' refuses the publish "
    "(PublishError), 'dead_letter' keeps it in the hub's dead-letter queue.",
    check=choice_check("task_unroutable", lambda: _UNROUTABLE_CHOICES),
)
TASK_DEFAULT_PRIORITY = declare(
    "task_default_priority",
    None,
    "Priority (0..255) of messages that get none from the call, the routes or the task.",
    parse=parse_optional(parse_int),
    check=lambda v: _check_priority(v, "task_default_priority"),
)
TASK_QUEUE_MAX_PRIORITY = declare(
    "task_queue_max_priority",
    None,
    "x-max-priority (1..255) for queues that do not set one; None: no priorities.",
    parse=parse_optional(parse_int),
    check=lambda v: _check_priority(v, "task_queue_max_priority", low=1),
)
declare(
    "task_inherit_parent_priority",
    False,
    "A task sent from a running task (including its chain's next step and its callbacks) "
    "gets the running task's priority, unless the call gives one; it then wins over "
    "task_routes and the task's own priority, as a call option does (Celery's rule).",
    check=_check_bool,
)


# -- resolving queues --------------------------------------------------------------------------


def _setting(conf: Mapping[str, Any], name: str) -> Any:
    return conf.get(name, _DEFAULTS[name])


def default_exchange(conf: Mapping[str, Any]) -> Exchange:
    """The exchange of queues that name none: ``task_default_exchange`` (or the default queue)."""
    name = _setting(conf, "task_default_exchange") or _setting(conf, "task_default_queue")
    return Exchange(name, _check_exchange_type(_setting(conf, "task_default_exchange_type")))


def _default_queue(conf: Mapping[str, Any]) -> Queue:
    name = _setting(conf, "task_default_queue")
    return Queue(name, routing_key=_setting(conf, "task_default_routing_key") or name)


def _resolve(conf: Mapping[str, Any], queue: Queue) -> Queue:
    max_priority = _setting(conf, "task_queue_max_priority")
    return queue._resolved(default_exchange(conf), max_priority)


@dataclasses.dataclass(frozen=True)
class _QueueTable:
    """The configured queues resolved once per configuration (cached: routing runs per call)."""

    configured: tuple[Queue, ...]
    by_name: Mapping[str, Queue]  # configured queues and the default queue
    exchanges: Mapping[str, Exchange]  # every exchange they use, the default one included


def _queue_table(conf: Mapping[str, Any]) -> _QueueTable:
    return _build_queue_table(
        _check_task_queues(_setting(conf, "task_queues")),
        _setting(conf, "task_default_queue"),
        _setting(conf, "task_default_exchange"),
        _setting(conf, "task_default_exchange_type"),
        _setting(conf, "task_default_routing_key"),
        _setting(conf, "task_queue_max_priority"),
    )


@functools.lru_cache(maxsize=64)
def _build_queue_table(
    queues: tuple[Queue, ...] | None,
    default_queue: str,
    exchange: str | None,
    exchange_type: str,
    routing_key: str | None,
    max_priority: int | None,
) -> _QueueTable:
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
    return _QueueTable(configured, by_name, exchanges)


def configured_queues(conf: Mapping[str, Any]) -> list[Queue]:
    """``task_queues`` (or just the default queue when it is None), fully resolved."""
    return list(_queue_table(conf).configured)


def queue_for(conf: Mapping[str, Any], queue: Queue | str) -> Queue:
    """The resolved queue for a Queue or a name (from task_queues, the default, or created).

    Raises ImproperlyConfigured for an unknown name when task_create_missing_queues is False.
    """
    if isinstance(queue, Queue):
        return _resolve(conf, queue)
    known = _queue_table(conf).by_name.get(queue)
    if known is not None:
        return known
    if not _setting(conf, "task_create_missing_queues"):
        raise ImproperlyConfigured(
            f"queue {queue!r} is not in task_queues and task_create_missing_queues is False"
        )
    return _resolve(conf, Queue(_check_queue_name(queue), Exchange(queue, "direct"), queue))


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
    for router in compile_routes(_setting(conf, "task_routes")):
        answer = router(task_name, args, kwargs, options, task=task)
        if answer is not None:
            return _as_route(answer, f"router {router!r} for {task_name!r}")
    return {}


def _exchange_of(conf: Mapping[str, Any], exchange: Exchange | str) -> Exchange:
    """An Exchange for an explicit exchange option; a bare name takes a known type if any."""
    if isinstance(exchange, Exchange):
        return exchange
    return _queue_table(conf).exchanges.get(exchange) or Exchange(exchange)


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
        queue=_setting(conf, "task_default_queue"),
        priority=_check_priority(_setting(conf, "task_default_priority"), "task_default_priority"),
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
