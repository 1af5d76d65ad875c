"""Composing a publish: the call's options in, one :class:`~celeriac._protocol.TaskMessage` out.

``apply_async`` and ``send_task`` take the same options
(:class:`~celeriac._call_options.SendOptions`) and both end in :func:`compose`, a pure function
of the configuration, the call and the time: it resolves ``countdown``/``eta``/``expires`` to
epoch seconds, the route (call options > ``task_routes`` > the task's options > defaults), the
time limits, the result policy and the parent/root ids, and serializes the arguments. Sockets,
signals and queue declarations stay with the caller (:meth:`App.send_task
<celeriac.App.send_task>`).

The result is a core type the transport encodes: the core must not import the transport at
import time (DESIGN.md section 6), so the message types live in :mod:`celeriac._protocol`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ._call_options import SendOptions, check_time_limits, time_limits, to_epoch
from ._canvas_flow import embed_of
from ._conf_settings import SettingsReader
from ._messages import ORIGIN, new_task_id
from ._protocol import TaskMessage
from ._serialization import dumps
from .routing import Route, resolve_route

if TYPE_CHECKING:
    from ._request import Request
    from ._task import Task

__all__ = ["OPTION_NAMES", "compose", "message_time_limits"]

_ROUTING_OPTIONS = ("queue", "exchange", "routing_key", "priority")
_ROUTING_KEYS = frozenset(_ROUTING_OPTIONS)
#: The options of a plain call (``apply_async`` passes the task's defaults of the last three).
_PLAIN_OPTIONS: Final = frozenset({"task_id", "serializer", "compression", "ignore_result"})
#: The names :class:`~celeriac._call_options.SendOptions` declares (anything else is a TypeError).
OPTION_NAMES = SendOptions.__required_keys__ | SendOptions.__optional_keys__


def compose(
    conf: Any,
    name: str,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    options: SendOptions,
    now: float,
    *,
    task: Task[Any, Any] | None = None,
    parent: Request | None = None,
) -> TaskMessage:
    """The message that sends task ``name`` (``task``: its local definition, if any, for its
    routing options and time limits) called with ``args``/``kwargs`` from ``parent``."""
    (
        default_serializer,
        default_compression,
        default_ignore_result,
        unroutable,
        routes,
        default_soft,
        default_hard,
        *route_settings,
    ) = _READ(conf)
    task_id = options.get("task_id") or new_task_id()
    # The common call names no option but these (one C-level check): none of the others is
    # looked up (some fifteen look-ups, ~0.5 us a send, issue 18).
    plain = _PLAIN_OPTIONS.issuperset(options)
    args_list, kwargs_dict = list(args or ()), dict(kwargs or {})
    call_routing = (
        {}  # none of the four routing options named
        if plain or _ROUTING_KEYS.isdisjoint(options)
        else {k: v for k in _ROUTING_OPTIONS if (v := options.get(k)) is not None}
    )
    if (
        parent is not None
        and "priority" not in call_routing
        and (inherited := _parent_priority(conf, parent)) is not None
    ):
        call_routing["priority"] = inherited  # task_inherit_parent_priority: as a call option
    if call_routing or routes:  # routers see the arguments: ask them every time
        route = resolve_route(
            conf,
            name,
            tuple(args_list),
            kwargs_dict,
            call_routing,
            _task_routing_options(task),
            task=task,
        )
    else:
        route = _route(conf, name, route_settings, task)
    serializer = options.get("serializer") or default_serializer
    compression = options.get("compression") or default_compression
    embed = {} if plain else embed_of(options)
    content_type, body = dumps([args_list, kwargs_dict, embed], serializer, compression)
    ignore_result = options.get("ignore_result")
    if ignore_result is None:
        ignore_result = bool(default_ignore_result)
    default_limit = default_soft or default_hard
    if plain:
        root_id = _root_id(parent, task_id)
        parent_id = parent.id if parent is not None else None
        group = eta = expires = headers = chord = chord_size = None
        timelimit = _call_time_limits(conf, task, None, None, default_limit)
    else:
        root_id = options.get("root_id") or _root_id(parent, task_id)
        parent_id = options.get("parent_id") or (parent.id if parent is not None else None)
        group = options.get("group_id")
        eta = _eta(options, now) if "countdown" in options or "eta" in options else None
        expires = None if (e := options.get("expires")) is None else _expires(e, now)
        headers = dict(h) if (h := options.get("headers")) else None
        chord, chord_size = options.get("chord_id"), options.get("chord_size")
        soft, hard = options.get("soft_time_limit"), options.get("time_limit")
        timelimit = _call_time_limits(conf, task, soft, hard, default_limit)
    # By position (see _FIELDS): 0.7 us a send less than 23 keywords (issue 18).
    return TaskMessage(
        task_id,  # id
        name,  # task
        body,
        content_type,
        route.queue or "",
        route.exchange,
        route.routing_key,
        root_id,
        parent_id,
        group,
        ORIGIN,
        not ignore_result,  # reply
        True if ignore_result else None,  # ignore_result; unset: the worker's default
        eta,
        expires,
        route.priority,
        0,  # retries
        timelimit,
        headers,
        "dead_letter" if unroutable == "dead_letter" else "error",  # unroutable
        None,  # dead_letter
        chord,
        chord_size,
    )


#: :class:`TaskMessage`'s fields in the order :func:`compose` passes them, checked at import:
#: a field added or moved there fails here, not as a shifted value on the wire.
_FIELDS: Final = (
    "id",
    "task",
    "body",
    "content_type",
    "queue",
    "exchange",
    "routing_key",
    "root_id",
    "parent_id",
    "group",
    "origin",
    "reply",
    "ignore_result",
    "eta",
    "expires",
    "priority",
    "retries",
    "timelimit",
    "headers",
    "unroutable",
    "dead_letter",
    "chord",
    "chord_size",
)
if tuple(f.name for f in dataclasses.fields(TaskMessage) if f.init) != _FIELDS:
    raise ImportError("TaskMessage's fields changed: update _compose._FIELDS and compose()")


#: Routes of calls with no routing options of their own while ``task_routes`` is empty, by the
#: task's routing options and the settings :func:`resolve_route` then reads: the route is a
#: function of these alone. ``resolve_route`` is some twenty calls on every send (issue 18).
_ROUTES: dict[tuple[Any, ...], Route] = {}
_ROUTES_KEPT = 512
_ROUTE_SETTINGS = (
    "task_default_queue",
    "task_default_priority",
    "task_queues",
    "task_default_exchange",
    "task_default_exchange_type",
    "task_default_routing_key",
    "task_create_missing_queues",
    "task_queue_max_priority",
)
#: Every setting a send reads (see the unpacking in :func:`compose`), in one C call.
_READ = SettingsReader(
    "task_serializer",
    "task_compression",
    "task_ignore_result",
    "task_unroutable",
    "task_routes",
    "task_soft_time_limit",
    "task_time_limit",
    *_ROUTE_SETTINGS,
)


def _route(conf: Any, name: str, route_settings: list[Any], task: Task[Any, Any] | None) -> Route:
    """:func:`resolve_route` of a call with no routing options while ``task_routes`` is empty,
    remembered: the task's options and ``route_settings`` (the values of
    :data:`_ROUTE_SETTINGS`) decide it alone."""
    task_routing = _task_routing_options(task)
    key = (*task_routing.items(), *route_settings)
    try:
        route = _ROUTES.get(key)
        kept = True
    except TypeError:  # an unhashable value (a list of queues): not remembered
        route, kept = None, False
    if route is None:
        # raises for a bad option or queue: nothing remembered then
        route = resolve_route(conf, name, (), {}, {}, task_routing, task=task)
        if not kept:
            return route
        if len(_ROUTES) >= _ROUTES_KEPT:
            _ROUTES.clear()
        _ROUTES[key] = route
    return route


def _parent_priority(conf: Any, parent: Request | None) -> int | None:
    """The sending task's priority, if ``task_inherit_parent_priority`` asks to inherit it."""
    if parent is None or not conf["task_inherit_parent_priority"]:
        return None
    priority = (parent.delivery_info or {}).get("priority")
    return priority if isinstance(priority, int) else None


def _root_id(parent: Request | None, task_id: str) -> str:
    return parent.root_id if parent is not None and parent.root_id else task_id


def _eta(options: SendOptions, now: float) -> float | None:
    countdown = options.get("countdown")
    return now + countdown if countdown is not None else to_epoch(options.get("eta"))


def _expires(expires: dt.datetime | float | None, now: float) -> float | None:
    return now + expires if isinstance(expires, int | float) else to_epoch(expires)


def _call_time_limits(
    conf: Any,
    task: Task[Any, Any] | None,
    soft: float | None,
    hard: float | None,
    default: Any,
) -> tuple[float | None, float | None] | None:
    """:func:`message_time_limits` of a call (``soft``, ``hard``: its options), skipped when
    no limit is set anywhere (the common case: the full resolution is ~2 µs on every send,
    issue 18); ``default``: either of the ``task_soft_time_limit``/``task_time_limit``
    settings."""
    if (
        soft
        or hard
        or default
        or getattr(task, "soft_time_limit", None)
        or getattr(task, "time_limit", None)
    ):
        return message_time_limits(conf, task, soft, hard)
    return None


def message_time_limits(
    conf: Any, task: Task[Any, Any] | None, soft: float | None, hard: float | None
) -> tuple[float | None, float | None] | None:
    """The message's ``(soft, hard)`` limits: the effective ones, so any worker (and the prefork
    parent, which kills at the hard limit) reads them from the message; None if none. A soft
    limit above the hard one (after precedence) is refused, as Celery does."""
    limits = time_limits(task, (soft, hard), conf)
    check_time_limits(*limits)
    return limits if limits != (None, None) else None


def _task_routing_options(task: Task[Any, Any] | None) -> dict[str, Any]:
    """The routing options a task declared (queue, exchange, routing_key, priority)."""
    if task is None:
        return {}
    if (
        task.queue is None
        and task.exchange is None
        and task.routing_key is None
        and task.priority is None
    ):
        return {}  # the common task declares none: four lookups, no comprehension
    return {k: v for k in _ROUTING_OPTIONS if (v := getattr(task, k, None)) is not None}
