"""The frame groups of the commands that carry items: PUB, TASK, DONE, RES, NACK, START, REJ.

Such a message is its tag and command, then one group of frames per item (a task: header and
body; a delivery: those and its delivery info). Loading an item checks it like any header
(:mod:`celeriac._wire_checks`); consecutive messages of one such command merge into one
(:func:`next_batch`).

A merged message leaves *packed*: its item frames as one msgpack array of binaries, in one
frame (``[TAG][command][packed]``), so that a ``TASK`` of forty deliveries is three frames, not
122. Every frame costs a ``zmq_msg_send`` and a ``zmq_msg_recv``, and pyzmq lets go of the GIL
for each: in a worker whose connection and slots share the GIL, each of those was a hand-off to
a waiting thread (a futex wake, often a context switch). Packing costs one encode and one
decode in C for the lot (issue 18). Decoding accepts either form; a packed frame is refused
before it is unpacked if its array is longer than :data:`~celeriac._protocol.MAX_ITEMS`
items allow, and each element must be a binary (:func:`unpack_items`).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import msgpack
import msgspec

from celeriac import _protocol as p
from celeriac._wire_checks import _Bad, _Table
from celeriac._wire_fast import FastHeader, FastMap
from celeriac._wire_parts import (
    DELIVERY_META,
    REFUSAL,
    REJECTION,
    RESULT,
    TASK,
    TASK_REF,
    packb,
    result_header,
    task_header,
)
from celeriac.exceptions import FrameError

__all__ = [
    "BATCH_ITEMS",
    "ITEMS",
    "MAX_HEADER_BYTES",
    "PACKED",
    "PACK_BYTES",
    "decode_result",
    "decode_task",
    "delivery_frames",
    "done_frames",
    "frames_held",
    "item_frames",
    "next_batch",
    "no_body",
    "packed_count",
    "publish_frames",
    "result_frames",
    "unpack",
    "unpack_items",
]

#: A header larger than this is refused: headers carry ids and routing, never payloads.
MAX_HEADER_BYTES: Final = 64 * 1024
_META_CACHE_SIZE: Final = 10_000


def unpack(data: bytes) -> Any:
    """One msgpack header, bounded in size; anything malformed raises the codec's error."""
    if len(data) > MAX_HEADER_BYTES:
        raise _Bad(f"header of {len(data)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises many types for bad input
        raise _Bad(f"header is not valid msgpack: {exc}") from None


def no_body(body: bytes) -> None:
    """Refuse a body where the command carries none."""
    if body:
        raise _Bad("this command carries no body")


_FAST_TASK: Final = FastHeader(TASK)
_DELIVERY_DEFAULTS: Final = {f.name: f.default for f in dataclasses.fields(p.Delivery)}
_FAST_RESULT: Final = FastHeader(RESULT)


def _header_loader(fast: FastHeader, table: Any) -> Callable[[bytes, bytes], Any]:
    """A header's decode: ``fast`` (checked in C) when it can judge it, else ``table``'s
    checked path, which keeps the raw header on the message."""

    def load(header: bytes, body: bytes) -> Any:
        # Frames are bytes but in tests; bytes() of bytes is the same object, yet the calls
        # cost 0.3 us a task (issue 18).
        if type(header) is not bytes:
            header = bytes(header)
        if type(body) is not bytes:
            body = bytes(body)
        if len(header) <= MAX_HEADER_BYTES:
            message = fast.load(header, body)
            if message is not None:
                return message
        message = table.load(unpack(header), body=body)
        object.__setattr__(message, "raw", header)
        return message

    return load


_load_task: Final[Callable[[bytes, bytes], p.TaskMessage]] = _header_loader(_FAST_TASK, TASK)
_load_result: Final[Callable[[bytes, bytes], p.ResultMessage]] = _header_loader(
    _FAST_RESULT, RESULT
)


_FAST_META: Final = FastMap(
    "_DeliveryMeta",
    [(key, attr, check, _DELIVERY_DEFAULTS[attr]) for key, attr, check, _ in DELIVERY_META],
)


#: Delivery infos decoded, by their bytes: nearly every delivery's is one of a few (its queue,
#: delivered once, no tag), and a look-up costs a tenth of the decode (issue 18). Only those
#: without a tag are kept (a tag is one delivery's), at most ``_META_CACHE_SIZE``.
_meta_seen: dict[bytes, tuple[Any, ...]] = {}


_TAG_AT: Final = [attr for _, attr, _, _ in DELIVERY_META].index("tag")


def _load_delivery(header: bytes, body: bytes, meta: bytes) -> p.Delivery:
    if type(meta) is not bytes:  # a dict key (see load above)
        meta = bytes(meta)
    fast = _meta_seen.get(meta)
    if fast is None and len(meta) <= MAX_HEADER_BYTES:
        fast = _FAST_META.values(meta)
        if fast is not None and fast[_TAG_AT] is None and len(_meta_seen) < _META_CACHE_SIZE:
            _meta_seen[meta] = fast
    if fast is not None:
        return p.Delivery(_load_task(header, body), *fast)
    return _load_delivery_checked(header, body, meta)


def _load_delivery_checked(header: bytes, body: bytes, meta: bytes) -> p.Delivery:
    """The usual path of a delivery's info: its own error for each malformed field."""
    info = unpack(meta)
    if not isinstance(info, dict):
        raise _Bad("delivery info: expected a map")
    kwargs: dict[str, Any] = {}
    for key, attr, check, _ in DELIVERY_META:
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
        no_body(body)
        return table.load(unpack(header))

    return load


_Loader = Callable[..., Any]
_Dumper = Callable[[Any], list[bytes]]

#: Commands whose message is a tuple of items: (class, frames per item, load one item).
ITEMS: Final[dict[bytes, tuple[type, int, _Loader]]] = {
    b"PUB": (p.Publish, 2, _load_task),
    b"TASK": (p.Deliver, 3, _load_delivery),
    b"DONE": (p.Done, 2, _load_result),
    b"RES": (p.Result, 2, _load_result),
    b"NACK": (p.Nack, 2, _loader(REFUSAL)),
    b"START": (p.Start, 2, _loader(TASK_REF)),
    b"REJ": (p.Reject, 2, _loader(REJECTION)),
}


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


_meta_cache: dict[tuple[str, int], bytes] = {}
_META_KEYS: Final = tuple(key for key, _, _, _ in DELIVERY_META)


def _delivery_meta(d: p.Delivery) -> bytes:
    return _meta(d.queue, d.deliveries, d.tag)


def _meta(queue: str, deliveries: int, tag: str | None) -> bytes:
    queue_key, deliveries_key, tag_key = _META_KEYS
    if tag is not None:
        return packb({queue_key: queue, deliveries_key: deliveries, tag_key: tag})  # type: ignore[no-any-return]
    key = (queue, deliveries)
    meta = _meta_cache.get(key)
    if meta is None:
        meta = packb({queue_key: queue, deliveries_key: deliveries})
        if len(_meta_cache) < _META_CACHE_SIZE:
            _meta_cache[key] = meta
    return meta


_TASK: Final = p.Deliver.COMMAND
_PUB: Final = p.Publish.COMMAND
_RES: Final = p.Result.COMMAND
_DONE: Final = p.Done.COMMAND


def delivery_frames(
    task: p.TaskMessage, queue: str, deliveries: int = 1, tag: str | None = None
) -> list[bytes]:
    """The frames of a ``TASK`` of one delivery, as ``encode(Deliver((Delivery(task, queue,
    deliveries, tag),)))`` makes them, without building either (the hub sends one per task:
    a third of the cost)."""
    return [p.TAG, _TASK, task_header(task), task.body, _meta(queue, deliveries, tag)]


def publish_frames(task: p.TaskMessage) -> list[bytes]:
    """The frames of a ``PUB`` of one task, as ``encode(Publish((task,)))`` makes them, without
    building the message (a client sends one per publish; ``next_batch`` merges them)."""
    return [p.TAG, _PUB, task_header(task), task.body]


def result_frames(result: p.ResultMessage) -> list[bytes]:
    """The frames of a ``RES`` of one result, as ``encode(Result((result,)))`` makes them."""
    return [p.TAG, _RES, result_header(result), result.body]


def done_frames(result: p.ResultMessage) -> list[bytes]:
    """The frames of a ``DONE`` of one outcome, as ``encode(Done((result,)))`` makes them (a
    slot sends one per task)."""
    return [p.TAG, _DONE, result_header(result), result.body]


def item_frames(message: Any) -> list[bytes]:
    """The frame groups of a message that carries items, one group per item, in order."""
    return _ITEM_FRAMES[type(message)](message)


def _task_frames(message: p.Publish) -> list[bytes]:
    # One task (a client's publish; merged later by next_batch): no loop (issue 18).
    if len(message.tasks) == 1:
        task = message.tasks[0]
        return [task_header(task), task.body]
    frames: list[bytes] = []
    for task in message.tasks:
        frames += (task_header(task), task.body)
    return frames


def _delivery_frames(message: p.Deliver) -> list[bytes]:
    frames: list[bytes] = []
    for d in message.deliveries:
        frames += (task_header(d.task), d.task.body, _delivery_meta(d))
    return frames


def _result_frames(message: p.Done | p.Result) -> list[bytes]:
    # One result (a slot's outcome, a result pushed to its waiter): no loop (issue 18).
    if len(message.results) == 1:
        r = message.results[0]
        return [result_header(r), r.body]
    frames: list[bytes] = []
    for r in message.results:
        frames += (result_header(r), r.body)
    return frames


def _table_frames(table: _Table, field: str) -> Callable[[Any], list[bytes]]:
    def frames(message: Any) -> list[bytes]:
        out: list[bytes] = []
        for item in getattr(message, field):
            out += (packb(table.dump(item)), b"")
        return out

    return frames


_ITEM_TABLES: Final[dict[type, _Table]] = {
    p.Nack: REFUSAL,
    p.Start: TASK_REF,
    p.Reject: REJECTION,
}
_ITEM_FIELD: Final = {p.Nack: "refusals", p.Start: "started", p.Reject: "rejections"}
#: Each item command's frames, by message type (one look-up, no chain of isinstance).
_ITEM_FRAMES: Final[dict[type, Callable[[Any], list[bytes]]]] = {
    p.Publish: _task_frames,
    p.Deliver: _delivery_frames,
    p.Done: _result_frames,
    p.Result: _result_frames,
    **{cls: _table_frames(table, _ITEM_FIELD[cls]) for cls, table in _ITEM_TABLES.items()},
}


#: Most items merged into one message by :func:`next_batch` (bounds one decode at the hub).
BATCH_ITEMS: Final = 256
#: Most bytes of item frames merged and packed into one frame by :func:`next_batch`: well
#: below the slack the hub's ``MAXMSGSIZE`` leaves above ``broker_max_message_size``
#: (``transport/sockets.py``), so a packed frame is never dropped whatever that setting says.
PACK_BYTES: Final = 512 * 1024

#: Frames of a packed message: its tag, its command and the packed item frames.
PACKED: Final = 3

_pack_items: Final = msgspec.msgpack.Encoder().encode
_decode_items: Final = msgspec.msgpack.Decoder(list[bytes]).decode


def packed_count(packed: bytes) -> int:
    """How many frames a packed frame says it holds (its msgpack array header), read before
    anything is unpacked; 1 for anything that is no array header (:func:`unpack_items`
    refuses it then)."""
    if not packed:
        return 1
    first = packed[0]
    if 0x90 <= first <= 0x9F:  # fixarray
        return first & 0x0F
    if first == 0xDC and len(packed) >= 3:  # array 16
        return int.from_bytes(packed[1:3], "big")
    if first == 0xDD and len(packed) >= 5:  # array 32
        return int.from_bytes(packed[1:5], "big")
    return 1


def frames_held(frames: list[bytes]) -> int:
    """How many frames a message (without a ROUTER identity) carries: a packed one (three
    frames: tag, command, packed) counted as the frames it holds, for a turn's budget."""
    return len(frames) if len(frames) != PACKED else 2 + packed_count(frames[2])


def unpack_items(packed: bytes, size: int) -> list[bytes]:
    """The item frames of a packed frame (groups of ``size``); anything malformed, too many
    items, an element that is not a binary raises the codec's error."""
    count = packed_count(packed)
    if count > p.MAX_ITEMS * size:
        raise _Bad(f"packed items: {count} frames exceed {p.MAX_ITEMS} items")
    try:
        return _decode_items(packed)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _Bad(f"packed items: {exc}") from None


def next_batch(queue: deque[list[bytes]]) -> list[bytes]:
    """Pop the next encoded message off ``queue``, merged with the messages right behind it
    that carry items of the same command (``PUB``, ``DONE``...): their frame groups are
    concatenated, at most :data:`BATCH_ITEMS` items and :data:`PACK_BYTES` bytes, and leave
    packed in one frame (the module's docstring), so that twenty publishes queued while the
    socket was busy leave as one ``PUB`` of three frames (one receive, one decode, one
    dispatch at the hub). Order is kept; control commands are never merged; a message that
    merged with none leaves as it is."""
    frames = queue.popleft()
    command = frames[1]
    if command not in ITEMS or not queue:
        return frames
    follower = queue[0]
    if follower[1] != command:
        return frames
    size = ITEMS[command][1]
    parts = frames[2:]
    items = len(parts) // size
    room = PACK_BYTES - sum(map(len, parts))
    while items < BATCH_ITEMS:
        more = follower[2:]
        room -= sum(map(len, more))
        if room < 0:
            break
        parts += more
        items += len(more) // size
        queue.popleft()
        if not queue:
            break
        follower = queue[0]
        if follower[1] != command:
            break
    if len(parts) == len(frames) - 2:  # the first alone was too big to merge with another
        return frames
    return [frames[0], command, _pack_items(parts)]
