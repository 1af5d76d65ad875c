"""The wire protocol's tag and bounds, and the splitting of long id lists under them.

The codec (:mod:`celeriac._wire_checks`) refuses any field past these bounds; senders use
:func:`id_chunks` so that no list of ids makes a header too large.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar

__all__ = [
    "LIST_BYTES",
    "MAX_COUNT",
    "MAX_ITEMS",
    "MAX_NAME",
    "MAX_PRIORITY",
    "MAX_TEXT",
    "TAG",
    "id_chunks",
]

#: Protocol name and version, the first frame of every message. ``CLR2``: a message may carry
#: several frame groups (items); a ``CLR1`` peer would have ignored all but the first.
#: ``CLR3``: a merged message's item frames may come packed in one (``_wire_items``), which a
#: ``CLR2`` peer would refuse as too few frames.
TAG: Final = b"CLR3"
#: Longest id, name, routing key or content type (AMQP short strings).
MAX_NAME: Final = 255
#: Longest free text (a reason, an origin, a traceback line is never sent in a header).
MAX_TEXT: Final = 4096
#: Largest count (credit, deliveries, retries, pid, request id).
MAX_COUNT: Final = 2**31 - 1
#: Most items in one message, and most entries in one list field.
MAX_ITEMS: Final = 100_000
#: Priorities are 0..255 (RabbitMQ's range).
MAX_PRIORITY: Final = 255
_T = TypeVar("_T")

#: Bytes of listed ids (or refusals) in one message (CONF, NACK, WAIT, REVOKE): well under the
#: 64 KiB header limit (``celeriac._wire.MAX_HEADER_BYTES``), so longer lists are split.
LIST_BYTES: Final = 32 * 1024


def id_chunks(
    items: Sequence[_T],
    size: Callable[[_T], int] = len,  # type: ignore[assignment]
) -> Iterator[tuple[_T, ...]]:
    """``items`` in order, in runs whose ``size`` (plus 8 bytes of framing each) adds up to at
    most :data:`LIST_BYTES`, one item at least per run."""
    run: list[_T] = []
    total = 0
    for item in items:
        n = size(item) + 8
        if run and total + n > LIST_BYTES:
            yield tuple(run)
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        yield tuple(run)
