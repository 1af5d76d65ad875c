"""Loading the store after a restart, where nothing read back is trusted.

How it works
------------
A row written by an older version, or damaged on disk, must not keep the hub down: every
stored message is checked column by column (SQLite columns hold any type) and its header is
decoded by the protocol's own codec, which checks every field as it does for a peer's
message. A row that fails is moved to the store's ``set_aside`` table with the reason
(:meth:`~celeriac.transport.store.Store.set_aside`), logged as ``message_set_aside`` and
counted; the hub comes up with the others. A bindings snapshot that cannot be read is logged
and ignored: peers declare their queues again in their ``HELLO``.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack

from celeriac._log import get_logger

from .. import protocol as p
from ..routing import ExchangeTable
from ..store import Store, StoredMessage

__all__ = ["RowError", "load_bindings", "load_row"]

_log = get_logger("celeriac.hub")

#: The largest sequence number a stored row may carry.
MAX_SEQ = 2**62


class RowError(Exception):
    """A stored row that cannot be restored; the message says why."""


def load_row(row: StoredMessage) -> p.TaskMessage:
    """The task of one stored row, every column and field checked; :class:`RowError` if not."""
    _check_columns(row)
    try:
        task = p.decode_task(row.header, row.body)
    except Exception as exc:  # FrameError, or anything a damaged blob provokes
        raise RowError(f"header does not decode: {exc}"[:300]) from None
    if row.id not in (task.id, f"{task.id}:{row.queue}"):
        raise RowError(f"row id {row.id!r:.80} does not match the task id {task.id!r:.80}")
    return task


def _check_columns(row: StoredMessage) -> None:
    checks: tuple[tuple[str, Any, bool], ...] = (
        ("id", row.id, isinstance(row.id, str) and 0 < len(row.id) <= 2 * p.MAX_NAME + 1),
        ("queue", row.queue, isinstance(row.queue, str) and 0 < len(row.queue) <= p.MAX_NAME),
        ("priority", row.priority, _int_in(row.priority, 0, p.MAX_PRIORITY)),
        ("eta", row.eta, row.eta is None or _finite(row.eta)),
        ("seq", row.seq, _int_in(row.seq, 0, MAX_SEQ)),
        ("header", b"", isinstance(row.header, bytes)),
        ("body", b"", isinstance(row.body, bytes)),
    )
    for column, value, ok in checks:
        if not ok:
            raise RowError(f"column {column} holds {type(value).__name__} {value!r:.60}")


def _int_in(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _finite(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and abs(value) <= 1e15  # type: ignore[arg-type]


def set_aside(store: Store, row: StoredMessage, reason: str, now: float) -> None:
    """Move an unrestorable row aside, and say so."""
    store.set_aside(row, reason, now)
    _log.error("message_set_aside", id=repr(row.id)[:120], reason=reason, table="set_aside")


def load_bindings(store: Store, key: str) -> ExchangeTable:
    """The stored exchange table, or an empty one if it is missing or cannot be read."""
    snapshot = store.get_meta(key)
    if snapshot is None:
        return ExchangeTable()
    try:
        return ExchangeTable.from_snapshot(msgpack.unpackb(snapshot, raw=False))
    except Exception as exc:  # damaged or from another version: peers declare again
        _log.error("bindings_not_restored", reason=f"{type(exc).__name__}: {exc}"[:300])
        return ExchangeTable()
