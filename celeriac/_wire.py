"""The wire codec: typed messages (:mod:`celeriac._protocol`) to and from ZeroMQ frames.

Every header field's wire name is spelled in the codec's modules and nowhere else: each message
type has one table of ``(wire key, attribute, check, dump)``, here for the commands with one
header, in :mod:`celeriac._wire_parts` for the parts they carry (tasks, results...); the frame
groups of the commands that carry items are :mod:`celeriac._wire_items`. Decoding walks the
keys present (absent ones take the dataclass default, unknown ones are ignored for forward
compatibility), checks each value's type and bounds (:mod:`celeriac._wire_checks`), and raises
:class:`~celeriac.exceptions.FrameError` (keeping the raw frames) for anything malformed, and
nothing else. See :mod:`celeriac.transport.protocol` for the frame layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from celeriac import _protocol as p
from celeriac import _wire_beat, _wire_canvas, _wire_compat, _wire_control, _wire_control2
from celeriac._wire_checks import (
    _Bad,
    _choice,
    _count,
    _dump_with,
    _flag,
    _map_of,
    _name,
    _names,
    _opt,
    _rid,
    _seconds,
    _Table,
    _text,
)
from celeriac._wire_items import (
    BATCH_ITEMS,
    ITEMS,
    MAX_HEADER_BYTES,
    PACKED,
    decode_result,
    decode_task,
    delivery_frames,
    done_frames,
    frames_held,
    item_frames,
    next_batch,
    no_body,
    packed_count,
    publish_frames,
    result_frames,
    unpack,
    unpack_items,
)
from celeriac._wire_keyed import TABLES as _KEYED_TABLES
from celeriac._wire_parts import (
    DECLARE,
    declaration,
    encode_event,
    failure_from_map,
    failure_map,
    packb,
    result_header,
    started_event,
    task_fields,
    task_from_fields,
    task_header,
)
from celeriac.exceptions import FrameError

__all__ = [
    "BATCH_ITEMS",
    "COMMANDS",
    "MAX_HEADER_BYTES",
    "declaration",
    "decode",
    "decode_result",
    "decode_task",
    "delivery_frames",
    "done_frames",
    "encode",
    "encode_event",
    "failure_from_map",
    "failure_map",
    "frames_held",
    "next_batch",
    "packed_count",
    "publish_frames",
    "result_frames",
    "result_header",
    "split_identity",
    "started_event",
    "task_fields",
    "task_from_fields",
    "task_header",
]

_HUB = ("hub", "hub", _opt(_name), None)

#: Commands with one frame group and no body: their header table.
_CONTROL: Final[dict[bytes, _Table]] = {
    t.cls.COMMAND: t  # type: ignore[attr-defined]
    for t in (
        DECLARE,
        _Table(
            p.Hello,
            ("role", "role", _choice("client", "worker"), None),
            ("node", "node", _name, None),
            ("pid", "pid", _opt(_count), None),
            ("on_lost", "on_lost", _opt(_choice("requeue", "fail")), None),
            ("queues", "queues", _names, list),
            ("declare", "declare", _opt(_map_of(DECLARE)), _dump_with(DECLARE)),
            ("credit", "credit", _count, None),
            ("inflight", "inflight", _names, list),
            ("results_confirm", "results_confirm", _flag, None),
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

#: Every command of the protocol.
COMMANDS: Final[frozenset[bytes]] = frozenset(_CONTROL) | frozenset(ITEMS)


# -- decode ------------------------------------------------------------------------------------


def decode(frames: Sequence[bytes]) -> p.Message:
    """Parse one message (without a ROUTER identity); malformed input raises FrameError only."""
    try:
        return _decode(frames)
    except _Bad as exc:
        raise FrameError(str(exc), list(frames)) from None


def _decode(frames: Sequence[bytes]) -> p.Message:
    n = len(frames)
    if n < 3:
        raise _Bad(f"expected at least 4 frames, got {n}")
    tag, command = frames[0], frames[1]
    if tag != p.TAG:
        raise _Bad(f"bad protocol tag {bytes(tag[:16])!r}, expected {p.TAG!r}")
    if n == PACKED:  # an item command's frames packed in one (_wire_items.next_batch)
        spec = ITEMS.get(command)
        if spec is None:
            raise _Bad(f"expected at least 4 frames, got {n}")
        packed = frames[2]
        items = unpack_items(packed if type(packed) is bytes else bytes(packed), spec[1])
        return _items(command, spec, [tag, command, *items])
    control = _CONTROL.get(command)
    if control is not None:
        if n != 4:
            raise _Bad(f"{command.decode()} has one header and an empty body, got {n} frames")
        no_body(frames[3])
        message: p.Message = control.load(unpack(frames[2]))
        return message
    spec = ITEMS.get(command)
    if spec is None:
        raise _Bad(f"unknown command {bytes(command[:16])!r}")
    return _items(command, spec, frames)


def _items(command: bytes, spec: tuple[type, int, Any], frames: Sequence[bytes]) -> p.Message:
    """The message of an item command from its frames (tag, command, groups)."""
    n = len(frames)
    cls, size, load = spec
    if (n - 2) % size or (n - 2) // size > p.MAX_ITEMS or n == 2:
        raise _Bad(f"{command.decode()} needs groups of {size} frames, got {n - 2}")
    if n - 2 == size:  # one item (a RES to its waiter, a slot's DONE): no slices (issue 18)
        items = (load(*frames[2:]),)
    else:
        # Each item's k-th frames as one slice: map calls ``load`` from C (no generator, no
        # slice per item: 0.3 us an item less, issue 18).
        items = tuple(map(load, *(frames[2 + k :: size] for k in range(size))))
    return cls(items)  # type: ignore[no-any-return]


def split_identity(frames: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Take a ROUTER socket's identity frame off a received message."""
    if not frames:
        raise FrameError("empty message", frames)
    return frames[0], frames[1:]


# -- encode ------------------------------------------------------------------------------------


def encode(message: p.Message) -> list[bytes]:
    """The frames of one message (without a ROUTER identity)."""
    command = message.COMMAND
    control = _CONTROL.get(command)
    if control is not None:
        return [p.TAG, command, packb(control.dump(message)), b""]
    frames = [p.TAG, command, *item_frames(message)]
    if len(frames) == 2:
        raise ValueError(f"a {command.decode()} message needs at least one item")
    return frames
