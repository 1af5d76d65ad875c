"""Queues and exchanges: kombu's ``Queue``/``Exchange`` with Celery's meanings (pure values).

``Queue(name, exchange=None, routing_key=None, queue_arguments=None, max_priority=None)``.
A queue with no exchange binds to the *default exchange* of the configuration
(``task_default_exchange``, which defaults to ``task_default_queue``, of type
``task_default_exchange_type``), as Celery documents; a queue with no routing key binds with its
own name (Celery would use ``task_default_routing_key``, which makes every key-less queue
receive the default queue's messages). ``queue_arguments={"x-max-priority": 10}`` is the same as
``max_priority=10``; ``task_queue_max_priority`` applies to queues that set neither.

Broadcast
---------
``Broadcast(name)`` is a queue on a fanout exchange named ``name``. Nobody consumes a queue
called ``name``: every worker that consumes the broadcast declares its own per-node queue,
``Broadcast.node_queue(node_name)``, bound to the fanout exchange, so each worker gets one copy
of each message. The hub should delete a node's broadcast queues when the node leaves (they are
per incarnation, like Celery's auto-delete broadcast queues). Publishing to a broadcast goes to
the exchange; the resulting :class:`Route` has ``queue=None``.

The names are public through :mod:`celeriac.routing` (and ``celeriac``); this module is their
home.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "EXCHANGE_TYPES",
    "UNROUTABLE_DEAD_LETTER",
    "UNROUTABLE_ERROR",
    "Broadcast",
    "Exchange",
    "Queue",
]

#: The exchange types celeriac's hub knows.
EXCHANGE_TYPES: Final = ("direct", "topic", "fanout")
#: ``task_unroutable`` values.
UNROUTABLE_ERROR: Final = "error"
UNROUTABLE_DEAD_LETTER: Final = "dead_letter"
_UNROUTABLE_CHOICES: Final = (UNROUTABLE_ERROR, UNROUTABLE_DEAD_LETTER)
_MAX_PRIORITY: Final = 255


# -- exchanges and queues ----------------------------------------------------------------------


def _check_exchange_type(kind: Any) -> str:
    if kind not in EXCHANGE_TYPES:
        raise ImproperlyConfigured(f"exchange type must be one of {EXCHANGE_TYPES}, not {kind!r}")
    return str(kind)


def _check_priority(value: Any, what: str, low: int = 0) -> int | None:
    """Return ``value`` if it is None or an int in ``low..255``, else raise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _MAX_PRIORITY:
        raise ImproperlyConfigured(f"{what} must be an integer in {low}..255, not {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Exchange:
    """An exchange: ``direct`` (exact key), ``topic`` (``*``/``#`` patterns) or ``fanout``."""

    name: str = ""
    type: str = "direct"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ImproperlyConfigured(f"exchange name must be a string, not {self.name!r}")
        _check_exchange_type(self.type)

    def as_declaration(self) -> dict[str, Any]:
        """The wire form sent to the hub: ``{"name": str, "type": str}``."""
        return {"name": self.name, "type": self.type}


@dataclasses.dataclass(frozen=True, init=False)
class Queue:
    """A named queue bound to an exchange with a routing key (kombu's ``Queue``, simplified).

    ``exchange=None`` (or ``""``) means the configuration's default exchange and
    ``routing_key=None`` means the queue's own name; :func:`queue_for` fills both in.
    """

    name: str
    exchange: Exchange | None = None
    routing_key: str | None = None
    queue_arguments: dict[str, Any] | None = dataclasses.field(default=None, hash=False)
    max_priority: int | None = None

    def __init__(
        self,
        name: str,
        exchange: Exchange | str | None = None,
        routing_key: str | None = None,
        queue_arguments: Mapping[str, Any] | None = None,
        max_priority: int | None = None,
    ) -> None:
        _set = object.__setattr__  # frozen dataclass: set once, here
        _set(self, "name", _check_queue_name(name))
        _set(self, "exchange", _coerce_exchange(exchange))
        if routing_key is not None and not isinstance(routing_key, str):
            raise ImproperlyConfigured(f"routing_key must be a string, not {routing_key!r}")
        _set(self, "routing_key", routing_key)
        args = dict(queue_arguments) if queue_arguments is not None else None
        _set(self, "queue_arguments", args)
        _set(self, "max_priority", _merge_max_priority(name, args, max_priority))

    def as_declaration(self, default_exchange: Exchange | None = None) -> dict[str, Any]:
        """The wire form: ``{"name", "max_priority", "bindings": [{"exchange", "routing_key"}]}``.

        An unspecified exchange binds to ``default_exchange``, or without one to a direct
        exchange named like the queue; use :func:`declare_queues` to get the configuration's.
        """
        exchange = self.exchange or default_exchange or Exchange(self.name)
        key = self.name if self.routing_key is None else self.routing_key
        return {
            "name": self.name,
            "max_priority": self.max_priority,
            "bindings": [{"exchange": exchange.name, "routing_key": key}],
        }

    def _resolved(self, default_exchange: Exchange, max_priority: int | None) -> Queue:
        """A copy with the exchange, routing key and max priority filled in."""
        # copy.copy, not dataclasses.replace: subclasses (Broadcast) have narrower __init__s
        resolved = copy.copy(self)
        _set = object.__setattr__
        _set(resolved, "exchange", self.exchange or default_exchange)
        _set(resolved, "routing_key", self.name if self.routing_key is None else self.routing_key)
        if self.max_priority is None:
            _set(resolved, "max_priority", max_priority)
        return resolved


def _check_queue_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ImproperlyConfigured(f"a queue name must be a non-empty string, not {name!r}")
    return name


def _coerce_exchange(exchange: Exchange | str | None) -> Exchange | None:
    """A string names a direct exchange; ``""`` and None mean the default exchange."""
    if isinstance(exchange, str):
        exchange = Exchange(exchange) if exchange else None
    if exchange is None or isinstance(exchange, Exchange):
        return exchange if exchange is None or exchange.name else None
    raise ImproperlyConfigured(f"exchange must be an Exchange or a name, not {exchange!r}")


def _merge_max_priority(
    name: str, arguments: Mapping[str, Any] | None, max_priority: int | None
) -> int | None:
    """``max_priority`` and ``queue_arguments["x-max-priority"]`` must agree."""
    from_args = (arguments or {}).get("x-max-priority")
    if from_args is not None and max_priority is not None and from_args != max_priority:
        raise ImproperlyConfigured(
            f"queue {name!r}: max_priority={max_priority} but x-max-priority={from_args}"
        )
    value = max_priority if max_priority is not None else from_args
    return _check_priority(value, f"queue {name!r} max_priority", low=1)


@dataclasses.dataclass(frozen=True, init=False)
class Broadcast(Queue):
    """A queue on a fanout exchange: every worker consuming it gets its own copy.

    Workers consume :meth:`node_queue` (one queue per node, bound to the fanout exchange), never
    a queue named ``name``; see the module docs.
    """

    def __init__(
        self,
        name: str,
        exchange: Exchange | str | None = None,
        queue_arguments: Mapping[str, Any] | None = None,
        max_priority: int | None = None,
    ) -> None:
        if isinstance(exchange, Exchange):
            fanout = exchange
        else:  # a name (or nothing: the broadcast's own name) always means a fanout exchange
            fanout = Exchange(exchange or name, "fanout")
        if fanout.type != "fanout":
            raise ImproperlyConfigured(f"Broadcast {name!r} needs a fanout exchange, not {fanout}")
        super().__init__(name, fanout, name, queue_arguments, max_priority)

    def node_queue(self, node_name: str) -> Queue:
        """The queue one node consumes for this broadcast: ``"<name>.<node_name>"``."""
        return Queue(
            f"{self.name}.{node_name}",
            exchange=self.exchange,
            routing_key=self.routing_key,
            max_priority=self.max_priority,
        )
