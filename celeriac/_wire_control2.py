"""Wire table of :class:`~celeriac._protocol_control2.ControlReplyPart`, and the splitting of a
long control reply into messages that each fit in a header.

:func:`reply_messages` packs an answer once and cuts the bytes into pieces of at most
:data:`~celeriac._wire_control.MAX_REPLY_BYTES`; the requester joins them back
(:class:`~celeriac.runtime.gather.Gather`). An answer over :data:`MAX_REPLY_TOTAL` bytes is not
sent whole: it becomes ``{"error": ..., "truncated": True, ...}`` (a list keeps its first
entries under ``"partial"``), so a cut is always said, never silent.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from celeriac import _protocol_control as c
from celeriac import _protocol_control2 as c2
from celeriac._wire_checks import _Bad, _name, _Table
from celeriac._wire_control import MAX_REPLY_BYTES

__all__ = ["MAX_REPLY_TOTAL", "TABLES", "join_reply", "reply_messages", "split_body"]

#: The most bytes one node's answer may take over all its pieces (about 280 messages).
MAX_REPLY_TOTAL: Final = 16 * 1024 * 1024


def _packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=repr)  # type: ignore[no-any-return]


def _blob(v: Any) -> bytes:
    if not isinstance(v, bytes):
        raise _Bad(f"expected bytes, got {type(v).__name__}")
    return v


def _too_long(value: Any, size: int, limit: int) -> bytes:
    """The answer that says ``value`` (``size`` packed bytes) was over ``limit``."""
    error = {
        "error": f"the reply of {size} bytes is over the {limit} bytes a control reply may "
        "carry; it was cut",
        "truncated": True,
    }
    if isinstance(value, list) and value:
        low, high = 0, len(value)  # the longest prefix that fits beside the error
        while low < high:
            mid = (low + high + 1) // 2
            if len(_packb({**error, "partial": value[:mid]})) <= limit:
                low = mid
            else:
                high = mid - 1
        error["partial"] = value[:low]
        error["total"] = len(value)
    return _packb(error)


def split_body(
    value: Any, *, piece: int = MAX_REPLY_BYTES, total: int = MAX_REPLY_TOTAL
) -> list[bytes]:
    """``value`` packed and cut into pieces of at most ``piece`` bytes (one piece at least)."""
    body = _packb(value)
    if len(body) > total:
        body = _too_long(value, len(body), total)
    return [body[i : i + piece] for i in range(0, len(body), piece)] or [b""]


def reply_messages(
    rid: str, node: str, value: Any, *, piece: int = MAX_REPLY_BYTES
) -> list[c2.ControlReplyPart | c.ControlReply]:
    """The messages that carry ``node``'s answer ``value`` to ``rid``: parts, then the reply."""
    pieces = split_body(value, piece=piece)
    out: list[c2.ControlReplyPart | c.ControlReply] = [
        c2.ControlReplyPart(rid, node, body) for body in pieces[:-1]
    ]
    out.append(c.ControlReply(rid, node, pieces[-1]))
    return out


def join_reply(parts: list[bytes], last: bytes) -> bytes:
    """The whole body of a reply from its leading parts and its final piece."""
    return b"".join(parts) + last if parts else last


TABLES: Final = (
    _Table(
        c2.ControlReplyPart,
        ("rid", "rid", _name, None),
        ("node", "node", _name, None),
        ("body", "body", _blob, None),
    ),
)
