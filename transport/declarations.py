"""Declarations of exchanges and queues as peers send them: their shape, checked, and parsed.

Wire form of declarations
-------------------------
exchange: ``{"name": str, "type": "direct" | "topic" | "fanout"}``
queue: ``{"name": str, "max_priority": int | None,
"bindings": [{"exchange": str, "routing_key": str}]}``

Errors
------
A declaration of the wrong shape raises :class:`~celeriac.exceptions.ProtocolError` (the peer
sent something the protocol does not allow). A well-formed declaration that conflicts with the
hub's state (an exchange re-declared with another type, a queue with another ``max_priority``)
raises :class:`DeclarationConflictError`, which is both a ``ProtocolError`` (one ``except`` in
the hub covers every declaration failure) and an ``ImproperlyConfigured`` (the fix is in
somebody's configuration): the hub should reply with the reason and keep trusting the peer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured, ProtocolError

__all__ = [
    "DEFAULT_EXCHANGE",
    "EXCHANGE_TYPES",
    "MAX_NAME_LENGTH",
    "MAX_PRIORITY",
    "DeclarationConflictError",
    "as_list",
    "check_keys",
    "check_max_priority",
    "check_name",
    "check_rules",
    "parse_exchange",
    "parse_queue",
]

#: The nameless direct exchange every queue is reachable through by its own name.
DEFAULT_EXCHANGE: Final = ""
#: The exchange types the hub knows.
EXCHANGE_TYPES: Final = frozenset({"direct", "topic", "fanout"})
#: AMQP short strings: names and routing keys longer than this are refused (this also bounds
#: the work one topic match can cost).
MAX_NAME_LENGTH: Final = 255
#: Largest ``max_priority`` a queue may declare (RabbitMQ's limit).
MAX_PRIORITY: Final = 255
_EXCHANGE_KEYS: Final = frozenset({"name", "type"})
_QUEUE_KEYS: Final = frozenset({"name", "max_priority", "bindings"})
_BINDING_KEYS: Final = frozenset({"exchange", "routing_key"})


class DeclarationConflictError(ProtocolError, ImproperlyConfigured):
    """A well-formed declaration that contradicts what the hub already holds.

    Both a :class:`ProtocolError` and an :class:`ImproperlyConfigured`: the hub replies with the
    reason (and does not distrust the peer); the client raises it as a configuration error.
    """


def check_name(value: Any, what: str, *, allow_empty: bool) -> str:
    """Return ``value`` if it is a usable name or key, else raise ProtocolError."""
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ProtocolError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ProtocolError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    return value


def check_keys(value: Any, keys: frozenset[str], what: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a dict with exactly ``keys``, else raise ProtocolError."""
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{what} must be a map, got {type(value).__name__}")
    present = set(value)
    if present != keys:
        missing = sorted(keys - present)
        extra = sorted(repr(k) for k in present - keys)
        raise ProtocolError(f"{what} has missing keys {missing} / unexpected keys {extra}")
    return value


def check_max_priority(value: Any, what: str) -> int | None:
    """Return a valid ``max_priority`` (None or 1..255) or raise ProtocolError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{what}.max_priority must be an integer or None")
    if not 1 <= value <= MAX_PRIORITY:
        raise ProtocolError(f"{what}.max_priority must be in 1..{MAX_PRIORITY}, got {value}")
    return value


def parse_exchange(decl: Any, index: int) -> tuple[str, str]:
    """Validate one exchange declaration; return ``(name, type)``."""
    what = f"exchange declaration #{index}"
    d = check_keys(decl, _EXCHANGE_KEYS, what)
    name = check_name(d["name"], f"{what}.name", allow_empty=True)
    kind = d["type"]
    if not isinstance(kind, str) or kind not in EXCHANGE_TYPES:
        raise ProtocolError(f"{what}.type must be one of {sorted(EXCHANGE_TYPES)}, got {kind!r}")
    if name == DEFAULT_EXCHANGE and kind != "direct":
        raise ProtocolError(f"{what}: the default exchange '' is direct, not {kind}")
    return name, kind


def _parse_binding(decl: Any, what: str) -> tuple[str, str]:
    """Validate one binding of a queue declaration; return ``(exchange, routing_key)``."""
    d = check_keys(decl, _BINDING_KEYS, what)
    exchange = check_name(d["exchange"], f"{what}.exchange", allow_empty=True)
    if exchange == DEFAULT_EXCHANGE:
        raise ProtocolError(f"{what}: the default exchange '' cannot be bound")
    key = check_name(d["routing_key"], f"{what}.routing_key", allow_empty=True)
    return exchange, key


def parse_queue(decl: Any, index: int) -> tuple[str, int | None, list[tuple[str, str]]]:
    """Validate one queue declaration; return ``(name, max_priority, bindings)``."""
    what = f"queue declaration #{index}"
    d = check_keys(decl, _QUEUE_KEYS, what)
    name = check_name(d["name"], f"{what}.name", allow_empty=False)
    max_priority = check_max_priority(d["max_priority"], what)
    raw = d["bindings"]
    if not isinstance(raw, list | tuple):
        raise ProtocolError(f"{what}.bindings must be a list, got {type(raw).__name__}")
    bindings = [_parse_binding(b, f"{what}.bindings[{i}]") for i, b in enumerate(raw)]
    return name, max_priority, bindings


def check_rules(
    exchanges: list[tuple[str, str]],
    queues: list[tuple[str, int | None, list[tuple[str, str]]]],
) -> None:
    """The rules of :func:`parse_exchange` and :func:`parse_queue` on parsed values."""
    for i, (name, kind) in enumerate(exchanges):
        parse_exchange({"name": name, "type": kind}, i)
    for i, (name, max_priority, bindings) in enumerate(queues):
        wire = [{"exchange": e, "routing_key": k} for e, k in bindings]
        parse_queue({"name": name, "max_priority": max_priority, "bindings": wire}, i)


def as_list(value: Any, what: str) -> list[Any]:
    """Return ``value`` as a list if it is a list or tuple, else raise ProtocolError."""
    if not isinstance(value, list | tuple):
        raise ProtocolError(f"{what} must be a list, got {type(value).__name__}")
    return list(value)
