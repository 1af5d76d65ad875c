"""The routing settings (Celery's names): declared here, read by :mod:`celeriac.routing`.

Imported by :mod:`celeriac.routing` (so by every App) for its declarations; :func:`setting`
reads one from a ``Settings`` or from a plain mapping that lacks it (tests, tools).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from celeriac._conf import choice_check, declare, parse_int, parse_optional
from celeriac._queues import (
    _UNROUTABLE_CHOICES,
    UNROUTABLE_ERROR,
    Queue,
    _check_exchange_type,
    _check_priority,
)
from celeriac._task_routes import compile_routes
from celeriac.exceptions import ImproperlyConfigured

__all__ = ["check_task_queues", "setting"]

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


def setting(conf: Mapping[str, Any], name: str) -> Any:
    """The routing setting ``name`` of ``conf``, or its default when ``conf`` lacks it."""
    return conf.get(name, _DEFAULTS[name])


# -- settings ----------------------------------------------------------------------------------


def check_task_queues(value: Any) -> tuple[Queue, ...] | None:
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
    check=check_task_queues,
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
)
