"""The wire tables of the protocol's parts, and the codec's helpers for them outside a message.

A part (a task, a result, a declaration, a failure, an event) has one table of
``(wire key, attribute, check, dump)``, used by the commands that carry it (:mod:`celeriac._wire`,
:mod:`celeriac._wire_items`) and by the helpers here: a task header as the map a signal
receiver edits, declarations from their map form, a failure as a result body's map, events.
"""

from __future__ import annotations

from typing import Any

import msgpack

from celeriac import _protocol as p
from celeriac._wire_checks import (
    _Bad,
    _choice,
    _count,
    _dump_list_with,
    _dump_map,
    _dump_with,
    _flag,
    _headers,
    _list_of,
    _long_text,
    _map_of,
    _name,
    _names,
    _number,
    _opt,
    _priority,
    _seconds,
    _seq,
    _Table,
    _text,
    _timelimit,
)
from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "DECLARE",
    "DELIVERY_META",
    "REFUSAL",
    "REJECTION",
    "RESULT",
    "TASK",
    "TASK_REF",
    "declaration",
    "encode_event",
    "failure_from_map",
    "failure_map",
    "packb",
    "result_header",
    "started_event",
    "task_fields",
    "task_from_fields",
    "task_header",
]

#: msgpack with bytes as bin: every header the codec writes.
packb = msgpack.Packer(use_bin_type=True).pack


_BINDING = _Table(
    p.Binding, ("exchange", "exchange", _name, None), ("routing_key", "routing_key", _name, None)
)
_EXCHANGE = _Table(
    p.ExchangeDecl,
    ("name", "name", _name, None),
    ("type", "type", _choice("direct", "topic", "fanout"), None),
)
_QUEUE = _Table(
    p.QueueDecl,
    ("name", "name", _name, None),
    ("max_priority", "max_priority", _opt(_priority), None),
    ("bindings", "bindings", _list_of(_BINDING), _dump_list_with(_BINDING)),
)
#: Exchanges and queues to declare (``DECLARE``, and inside ``HELLO``).
DECLARE = _Table(
    p.Declare,
    ("exchanges", "exchanges", _list_of(_EXCHANGE), _dump_list_with(_EXCHANGE)),
    ("queues", "queues", _list_of(_QUEUE), _dump_list_with(_QUEUE)),
)
_DEAD_LETTER = _Table(
    p.DeadLetter,
    ("reason", "reason", _text, None),
    ("queue", "queue", _name, None),
    ("at", "at", _number, None),
)
#: A task message's header (``PUB``, ``TASK``; stored by the hub as sent).
TASK = _Table(
    p.TaskMessage,
    ("id", "id", _name, None),
    ("task", "task", _name, None),
    ("ct", "content_type", _name, None),
    ("queue", "queue", _name, None),
    ("exchange", "exchange", _opt(_name), None),
    ("routing_key", "routing_key", _opt(_name), None),
    ("root_id", "root_id", _opt(_name), None),
    ("parent_id", "parent_id", _opt(_name), None),
    ("group", "group", _opt(_name), None),
    ("origin", "origin", _opt(_text), None),
    ("reply", "reply", _flag, None),
    ("ignore_result", "ignore_result", _opt(_flag), None),
    ("eta", "eta", _opt(_number), None),
    ("expires", "expires", _opt(_number), None),
    ("priority", "priority", _opt(_priority), None),
    ("retries", "retries", _count, None),
    ("timelimit", "timelimit", _opt(_timelimit), list),
    ("headers", "headers", _opt(_headers), _dump_map),
    ("unroutable", "unroutable", _choice("error", "dead_letter"), None),
    ("dead_letter", "dead_letter", _opt(_map_of(_DEAD_LETTER)), _dump_with(_DEAD_LETTER)),
    ("chord", "chord", _opt(_name), None),
    ("chord_size", "chord_size", _opt(_count), None),
    always=("task", "queue", "content_type"),
)
#: A delivery's own frame: its queue, delivery count and tag.
DELIVERY_META = (
    ("queue", "queue", _name, None),
    ("deliveries", "deliveries", _count, None),
    ("tag", "tag", _opt(_name), None),
)
#: A result's header (``DONE``, ``RES``).
RESULT = _Table(
    p.ResultMessage,
    ("id", "id", _name, None),
    ("state", "state", _name, None),
    ("ct", "content_type", _name, None),
    ("tag", "tag", _opt(_name), None),
    ("store", "store", _flag, None),
    ("credit", "credit", _count, None),
    ("hub", "hub", _flag, None),
    ("retry_eta", "retry_eta", _opt(_number), None),
    ("children", "children", _names, list),
    always=("content_type",),
)
_TAGGED = (("id", "id", _name, None), ("tag", "tag", _opt(_name), None))
#: A delivery named by id and tag (``START``, ``task-started`` events).
TASK_REF = _Table(p.TaskRef, *_TAGGED)
#: A refused publish (``NACK``).
REFUSAL = _Table(p.Refusal, ("id", "id", _name, None), ("reason", "reason", _text, None))
#: A delivery given back or dropped (``REJ``).
REJECTION = _Table(
    p.Rejection,
    *_TAGGED,
    ("requeue", "requeue", _flag, None),
    ("reason", "reason", _opt(_text), None),
    ("credit", "credit", _count, None),
)
_FAILURE = _Table(
    p.FailureInfo,
    ("exc_type", "exc_type", _name, None),
    ("exc_module", "exc_module", _name, None),
    ("exc_message", "exc_message", lambda v: tuple(_seq(v)), list),
    ("traceback", "traceback", _opt(_long_text), None),
    always=("exc_message", "traceback"),
)
_EVENT = _Table(
    p.WorkerEvent,
    ("hostname", "hostname", _name, None),
    ("queues", "queues", _opt(_names), list),
    ("reason", "reason", _opt(_text), None),
    ("pid", "pid", _opt(_count), None),
    ("freq", "freq", _opt(_seconds), None),
    ("sw_ident", "sw_ident", _opt(_name), None),
    ("sw_ver", "sw_ver", _opt(_name), None),
    ("sw_sys", "sw_sys", _opt(_name), None),
)


def task_header(task: p.TaskMessage) -> bytes:
    """The header bytes of a task: as received if it was decoded, else freshly packed."""
    return task.raw or packb(TASK.dump(task))


def result_header(result: p.ResultMessage) -> bytes:
    """The header bytes of a result: as received if it was decoded, else freshly packed."""
    return result.raw or packb(RESULT.dump(result))


def task_fields(task: p.TaskMessage) -> dict[str, Any]:
    """A task's header as a map (what ``before_task_publish`` receivers see as ``headers``)."""
    return TASK.dump(task)


def task_from_fields(fields: Any, body: bytes) -> p.TaskMessage:
    """A task from a header map (as edited by a signal receiver); ImproperlyConfigured if the
    map is not a valid task header: the error is on this side."""
    try:
        task: p.TaskMessage = TASK.load(fields, body=body)
    except _Bad as exc:
        raise ImproperlyConfigured(f"invalid task header: {exc}") from None
    return task


def declaration(exchanges: Any, queues: Any) -> p.Declare:
    """Declarations from their map form (:meth:`celeriac.Queue.as_declaration`)."""
    try:
        declare: p.Declare = DECLARE.load({"exchanges": exchanges, "queues": queues})
    except _Bad as exc:
        raise ImproperlyConfigured(f"invalid declaration: {exc}") from None
    return declare


def encode_event(event: p.WorkerEvent) -> bytes:
    """The payload of a worker event on the hub's PUB socket."""
    return packb(_EVENT.dump(event))  # type: ignore[no-any-return]


def started_event(ref: p.TaskRef) -> bytes:
    """The payload of a ``task-started`` event."""
    return packb(TASK_REF.dump(ref))  # type: ignore[no-any-return]


def failure_map(info: p.FailureInfo) -> dict[str, Any]:
    """A failure as the map a result body carries (serialized with the result's content type)."""
    return _FAILURE.dump(info)


def failure_from_map(value: Any) -> p.FailureInfo | None:
    """A failure read back from a result body's map; None if it is not one."""
    try:
        info: p.FailureInfo = _FAILURE.load(value)
    except _Bad:
        return None
    return info
