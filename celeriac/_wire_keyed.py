"""Wire tables of the keyed-actor and lock commands (:mod:`celeriac._protocol_keyed`).

Added to :mod:`celeriac._wire`'s control commands in one line; each is one header map and an
empty body. An actor's saved state is a msgpack ``bin`` value in the header, so it is bounded by
:data:`~celeriac._protocol_keyed.MAX_STATE` (the header limit is 64 KiB).
"""

from __future__ import annotations

from typing import Any, Final

from celeriac import _protocol_keyed as k
from celeriac._wire_checks import _Bad, _name, _opt, _rid, _seconds, _Table

__all__ = ["TABLES"]


def _state(v: Any) -> bytes:
    if not isinstance(v, bytes) or len(v) > k.MAX_STATE:
        raise _Bad(f"expected bytes of at most {k.MAX_STATE}")
    return v


_QUEUE = ("queue", "queue", _name, None)
_RID = ("rid", "rid", _opt(_rid), None)

#: One table per command of this lane.
TABLES: Final = (
    _Table(k.KeyedActivate, _QUEUE, ("state", "state", _opt(_state), None)),
    _Table(k.KeyedSave, _QUEUE, ("state", "state", _state, None)),
    _Table(k.KeyedIdle, _QUEUE),
    _Table(k.KeyedStop, _QUEUE),
    _Table(
        k.LockAcquire,
        ("name", "name", _name, None),
        ("owner", "owner", _name, None),
        ("expire", "expire", _seconds, None),
        _RID,
        ("wait", "wait", _opt(_seconds), None),
    ),
    _Table(k.LockRelease, ("name", "name", _name, None), ("owner", "owner", _name, None), _RID),
    _Table(k.LockQuery, ("name", "name", _name, None), _RID),
)
