"""Wire tables of the control and event messages (:mod:`celeriac._protocol_control`).

:mod:`celeriac._wire` adds :data:`TABLES` to its table of one-group commands; the checks bound
every field like the rest of the protocol (the whole header stays under 64 KiB).
"""

from __future__ import annotations

from typing import Any, Final

from celeriac import _protocol_control as c
from celeriac._wire_checks import _Bad, _flag, _headers, _name, _names, _opt, _seq, _Table

__all__ = ["MAX_EVENTS_BYTES", "MAX_REPLY_BYTES", "TABLES"]

#: A control reply's body travels in its header, which is at most 64 KiB: a longer answer is
#: cut into pieces of at most this many bytes (:mod:`celeriac._wire_control2`), so no peer ever
#: sends a header the other side must refuse.
MAX_REPLY_BYTES: Final = 60_000
#: The events of one ``EVENTS`` message stay under this (a sender splits its batch).
MAX_EVENTS_BYTES: Final = 48_000


def _blob(v: Any) -> bytes:
    if not isinstance(v, bytes):
        raise _Bad(f"expected bytes, got {type(v).__name__}")
    return v


def _event(v: Any) -> dict[str, Any]:
    event = _headers(v)
    if not isinstance(event.get("type"), str):
        raise _Bad("an event needs a string 'type'")
    return event


def _events(v: Any) -> tuple[dict[str, Any], ...]:
    return tuple(_event(e) for e in _seq(v))


def _dump_dicts(v: Any) -> list[dict[str, Any]]:
    return [dict(e) for e in v]


TABLES: Final = (
    _Table(c.ControlJoin, ("node", "node", _name, None)),
    _Table(
        c.ControlRequest,
        ("rid", "rid", _name, None),
        ("command", "command", _name, None),
        ("arguments", "arguments", _headers, dict),
        ("destination", "destination", _opt(_names), lambda v: None if v is None else list(v)),
        ("reply", "reply", _flag, None),
        always=("reply",),
    ),
    _Table(
        c.ControlSent,
        ("rid", "rid", _name, None),
        ("nodes", "nodes", _names, list),
        ("unknown", "unknown", _names, list),
    ),
    _Table(
        c.ControlCommand,
        ("rid", "rid", _name, None),
        ("command", "command", _name, None),
        ("arguments", "arguments", _headers, dict),
        ("reply", "reply", _flag, None),
        always=("reply",),
    ),
    _Table(
        c.ControlReply,
        ("rid", "rid", _name, None),
        ("node", "node", _name, None),
        ("body", "body", _blob, None),
    ),
    _Table(c.EventBatch, ("events", "events", _events, _dump_dicts)),
)
