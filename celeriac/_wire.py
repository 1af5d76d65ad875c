"""The wire codec: typed messages (:mod:`celeriac._protocol`) to and from ZeroMQ frames.

Every header field's wire name is spelled in this module and nowhere else: each message type
has one table of ``(wire key, attribute, check, dump)``. Decoding walks the keys present
(absent ones take the dataclass default, unknown ones are ignored for forward compatibility),
checks each value's type and bounds (:mod:`celeriac._wire_checks`), and raises
:class:`~celeriac.exceptions.FrameError` (keeping the raw frames) for anything malformed, and
nothing else. See :mod:`celeriac.transport.protocol` for the frame layout.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import msgpack

from celeriac import _protocol as p
from celeriac import _wire_beat, _wire_canvas, _wire_compat, _wire_control, _wire_control2
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
    _rid,
    _seconds,
    _seq,
    _Table,
    _text,
    _timelimit,
)
from celeriac._wire_keyed import TABLES as _KEYED_TABLES
from celeriac.exceptions import FrameError, ImproperlyConfigured

__all__ = [
    "BATCH_ITEMS",
    "COMMANDS",
    "MAX_HEADER_BYTES",
    "declaration",
    "decode",
    "decode_result",
    "decode_task",
    "encode",
    "encode_event",
    "failure_from_map",
    "failure_map",
    "next_batch",
    "result_header",
    "split_identity",
    "started_event",
    "task_fields",
    "task_from_fields",
    "task_header",
]

#: A header larger than this is refused: headers carry ids and routing, never payloads.
MAX_HEADER_BYTES: Final = 64 * 1024
_META_CACHE_SIZE: Final = 10_000
_packb = msgpack.Packer(use_bin_type=True).pack


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
_DECLARE = _Table(
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
_TASK = _Table(
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
_DELIVERY_META = (
    ("queue", "queue", _name, None),
    ("deliveries", "deliveries", _count, None),
    ("tag", "tag", _opt(_name), None),
)
_RESULT = _Table(
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
_TASK_REF = _Table(p.TaskRef, *_TAGGED)
_REFUSAL = _Table(p.Refusal, ("id", "id", _name, None), ("reason", "reason", _text, None))
_REJECTION = _Table(
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
_HUB = ("hub", "hub", _opt(_name), None)

#: Commands with one frame group and no body: their header table.
_CONTROL: Final[dict[bytes, _Table]] = {
    t.cls.COMMAND: t  # type: ignore[attr-defined]
    for t in (
        _DECLARE,
        _Table(
            p.Hello,
            ("role", "role", _choice("client", "worker"), None),
            ("node", "node", _name, None),
            ("pid", "pid", _opt(_count), None),
            ("on_lost", "on_lost", _opt(_choice("requeue", "fail")), None),
            ("queues", "queues", _names, list),
            ("declare", "declare", _opt(_map_of(_DECLARE)), _dump_with(_DECLARE)),
            ("credit", "credit", _count, None),
            ("inflight", "inflight", _names, list),
        ),
        _Table(
            p.Welcome,
            ("hub", "hub", _name, None),
            ("heartbeat", "heartbeat", _seconds, None),
            ("node", "node", _opt(_name), None),
        ),
        _Table(p.Confirm, ("ids", "ids", _names, list)),
        _Table(p.Credit, ("credit", "credit", _count, None)),
        _Table(p.Consume, ("queues", "queues", _names, list)),
        _Table(p.Wait, ("ids", "ids", _names, list)),
        _Table(p.Stat, ("id", "id", _name, None), ("rid", "rid", _opt(_rid), None)),
        _Table(
            p.Reply,
            ("id", "id", _name, None),
            ("state", "state", _name, None),
            ("rid", "rid", _opt(_rid), None),
            ("queue", "queue", _opt(_name), None),
            ("consumers", "consumers", _opt(_count), None),
            ("worker", "worker", _opt(_name), None),
        ),
        _Table(p.Forget, ("id", "id", _name, None)),
        _Table(
            p.Revoke,
            ("ids", "ids", _names, list),
            ("terminate", "terminate", _flag, None),
            ("signal", "signal", _opt(_name), None),
        ),
        _Table(p.Ping, _HUB, ("inflight", "inflight", _opt(_count), None)),
        _Table(p.Pong, _HUB, ("known", "known", _opt(_flag), None)),
        _Table(p.Bye),
        _Table(
            p.Error,
            ("code", "code", _name, None),
            ("reason", "reason", _opt(_text), None),
            _HUB,
        ),
        *_wire_beat.TABLES,
        *_wire_compat.TABLES,
        *_wire_control.TABLES,
        *_KEYED_TABLES,
        *_wire_canvas.TABLES,
        *_wire_control2.TABLES,
    )
}


# -- items: the frame groups of PUB, TASK, DONE, RES, NACK, START, REJ ---------------------------


def _unpack(data: bytes) -> Any:
    if len(data) > MAX_HEADER_BYTES:
        raise _Bad(f"header of {len(data)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises many types for bad input
        raise _Bad(f"header is not valid msgpack: {exc}") from None


def _no_body(body: bytes) -> None:
    if body:
        raise _Bad("this command carries no body")


def _load_task(header: bytes, body: bytes) -> p.TaskMessage:
    task: p.TaskMessage = _TASK.load(_unpack(header), body=bytes(body))
    object.__setattr__(task, "raw", bytes(header))
    return task


def _load_result(header: bytes, body: bytes) -> p.ResultMessage:
    result: p.ResultMessage = _RESULT.load(_unpack(header), body=bytes(body))
    object.__setattr__(result, "raw", bytes(header))
    return result


def _load_delivery(header: bytes, body: bytes, meta: bytes) -> p.Delivery:
    info = _unpack(meta)
    if not isinstance(info, dict):
        raise _Bad("delivery info: expected a map")
    kwargs: dict[str, Any] = {}
    for key, attr, check, _ in _DELIVERY_META:
        if key in info:
            try:
                kwargs[attr] = check(info[key])
            except _Bad as exc:
                raise _Bad(f"Delivery.{key}: {exc}") from None
    if "queue" not in kwargs:  # the attribute, required
        raise _Bad("Delivery: the queue is missing")
    return p.Delivery(_load_task(header, body), **kwargs)


def _loader(table: _Table) -> Callable[[bytes, bytes], Any]:
    def load(header: bytes, body: bytes) -> Any:
        _no_body(body)
        return table.load(_unpack(header))

    return load


_Loader = Callable[..., Any]
_Dumper = Callable[[Any], list[bytes]]

#: Commands whose message is a tuple of items: (class, frames per item, load one item).
_ITEMS: Final[dict[bytes, tuple[type, int, _Loader]]] = {
    b"PUB": (p.Publish, 2, _load_task),
    b"TASK": (p.Deliver, 3, _load_delivery),
    b"DONE": (p.Done, 2, _load_result),
    b"RES": (p.Result, 2, _load_result),
    b"NACK": (p.Nack, 2, _loader(_REFUSAL)),
    b"START": (p.Start, 2, _loader(_TASK_REF)),
    b"REJ": (p.Reject, 2, _loader(_REJECTION)),
}
#: Every command of the protocol.
COMMANDS: Final[frozenset[bytes]] = frozenset(_CONTROL) | frozenset(_ITEMS)


# -- decode ------------------------------------------------------------------------------------


def decode(frames: Sequence[bytes]) -> p.Message:
    """Parse one message (without a ROUTER identity); malformed input raises FrameError only."""
    try:
        return _decode(frames)
    except _Bad as exc:
        raise FrameError(str(exc), list(frames)) from None


def _decode(frames: Sequence[bytes]) -> p.Message:
    n = len(frames)
    if n < 4:
        raise _Bad(f"expected at least 4 frames, got {n}")
    tag, command = frames[0], frames[1]
    if tag != p.TAG:
        raise _Bad(f"bad protocol tag {bytes(tag[:16])!r}, expected {p.TAG!r}")
    control = _CONTROL.get(command)
    if control is not None:
        if n != 4:
            raise _Bad(f"{command.decode()} has one header and an empty body, got {n} frames")
        _no_body(frames[3])
        message: p.Message = control.load(_unpack(frames[2]))
        return message
    spec = _ITEMS.get(command)
    if spec is None:
        raise _Bad(f"unknown command {bytes(command[:16])!r}")
    cls, size, load = spec
    if (n - 2) % size or (n - 2) // size > p.MAX_ITEMS:
        raise _Bad(f"{command.decode()} needs groups of {size} frames, got {n - 2}")
    items = tuple(load(*frames[i : i + size]) for i in range(2, n, size))
    return cls(items)  # type: ignore[no-any-return]


def decode_task(header: bytes, body: bytes) -> p.TaskMessage:
    """One stored task message (header bytes as published, body); FrameError if malformed."""
    try:
        return _load_task(header, body)
    except _Bad as exc:
        raise FrameError(str(exc), [header]) from None


def decode_result(header: bytes, body: bytes) -> p.ResultMessage:
    """One stored result (header bytes as sent by the worker or hub, body)."""
    try:
        return _load_result(header, body)
    except _Bad as exc:
        raise FrameError(str(exc), [header]) from None


def split_identity(frames: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Take a ROUTER socket's identity frame off a received message."""
    if not frames:
        raise FrameError("empty message", frames)
    return frames[0], frames[1:]


# -- encode ------------------------------------------------------------------------------------


def task_header(task: p.TaskMessage) -> bytes:
    """The header bytes of a task: as received if it was decoded, else freshly packed."""
    return task.raw or _packb(_TASK.dump(task))


def result_header(result: p.ResultMessage) -> bytes:
    """The header bytes of a result: as received if it was decoded, else freshly packed."""
    return result.raw or _packb(_RESULT.dump(result))


_meta_cache: dict[tuple[str, int], bytes] = {}
_META_KEYS: Final = tuple(key for key, _, _, _ in _DELIVERY_META)


def _delivery_meta(d: p.Delivery) -> bytes:
    queue, deliveries, tag = _META_KEYS
    if d.tag is not None:
        return _packb({queue: d.queue, deliveries: d.deliveries, tag: d.tag})  # type: ignore[no-any-return]
    key = (d.queue, d.deliveries)
    meta = _meta_cache.get(key)
    if meta is None:
        meta = _packb({queue: d.queue, deliveries: d.deliveries})
        if len(_meta_cache) < _META_CACHE_SIZE:
            _meta_cache[key] = meta
    return meta


def _item_frames(message: Any) -> Iterable[bytes]:
    if isinstance(message, p.Publish):
        for task in message.tasks:
            yield task_header(task)
            yield task.body
    elif isinstance(message, p.Deliver):
        for d in message.deliveries:
            yield task_header(d.task)
            yield d.task.body
            yield _delivery_meta(d)
    elif isinstance(message, p.Done | p.Result):
        for r in message.results:
            yield result_header(r)
            yield r.body
    else:
        table = _ITEM_TABLES[type(message)]
        for item in getattr(message, _ITEM_FIELD[type(message)]):
            yield _packb(table.dump(item))
            yield b""


_ITEM_TABLES: Final[dict[type, _Table]] = {
    p.Nack: _REFUSAL,
    p.Start: _TASK_REF,
    p.Reject: _REJECTION,
}
_ITEM_FIELD: Final = {p.Nack: "refusals", p.Start: "started", p.Reject: "rejections"}


def encode(message: p.Message) -> list[bytes]:
    """The frames of one message (without a ROUTER identity)."""
    command = message.COMMAND
    control = _CONTROL.get(command)
    if control is not None:
        return [p.TAG, command, _packb(control.dump(message)), b""]
    frames = [p.TAG, command]
    frames.extend(_item_frames(message))
    if len(frames) == 2:
        raise ValueError(f"a {command.decode()} message needs at least one item")
    return frames


#: Most items merged into one message by :func:`next_batch` (bounds one decode at the hub).
BATCH_ITEMS: Final = 256


def next_batch(queue: deque[list[bytes]]) -> list[bytes]:
    """Pop the next encoded message off ``queue``, merged with the messages right behind it
    that carry items of the same command (``PUB``, ``DONE``...): their frame groups are simply
    concatenated, so twenty publishes queued while the socket was busy leave as one ``PUB``
    (one receive, one decode, one dispatch at the hub). Order is kept; control commands are
    never merged."""
    frames = queue.popleft()
    command = frames[1]
    if command not in _ITEMS or not queue:
        return frames
    size = _ITEMS[command][1]
    items = (len(frames) - 2) // size
    while queue and items < BATCH_ITEMS:
        follower = queue[0]
        if follower[1] != command:
            break
        items += (len(follower) - 2) // size
        frames.extend(follower[2:])
        queue.popleft()
    return frames


def task_fields(task: p.TaskMessage) -> dict[str, Any]:
    """A task's header as a map (what ``before_task_publish`` receivers see as ``headers``)."""
    return _TASK.dump(task)


def task_from_fields(fields: Any, body: bytes) -> p.TaskMessage:
    """A task from a header map (as edited by a signal receiver); ImproperlyConfigured if the
    map is not a valid task header: the error is on this side."""
    try:
        task: p.TaskMessage = _TASK.load(fields, body=body)
    except _Bad as exc:
        raise ImproperlyConfigured(f"invalid task header: {exc}") from None
    return task


def declaration(exchanges: Any, queues: Any) -> p.Declare:
    """Declarations from their map form (:meth:`celeriac.Queue.as_declaration`)."""
    try:
        declare: p.Declare = _DECLARE.load({"exchanges": exchanges, "queues": queues})
    except _Bad as exc:
        raise ImproperlyConfigured(f"invalid declaration: {exc}") from None
    return declare


def encode_event(event: p.WorkerEvent) -> bytes:
    """The payload of a worker event on the hub's PUB socket."""
    return _packb(_EVENT.dump(event))  # type: ignore[no-any-return]


def started_event(ref: p.TaskRef) -> bytes:
    """The payload of a ``task-started`` event."""
    return _packb(_TASK_REF.dump(ref))  # type: ignore[no-any-return]


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
