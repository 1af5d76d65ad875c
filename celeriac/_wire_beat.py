"""The wire tables of beat's messages (:mod:`celeriac._protocol_beat`), added to the codec's
control commands by :mod:`celeriac._wire`."""

from __future__ import annotations

from typing import Any, Final

from celeriac import _protocol_beat as b
from celeriac._wire_checks import (
    _Bad,
    _dump_map,
    _flag,
    _name,
    _number,
    _opt,
    _rid,
    _seconds,
    _Table,
    _text,
)

__all__ = ["MAX_ENTRIES", "TABLES"]

#: Most entries in one schedule's state.
MAX_ENTRIES: Final = 10_000


def _slots(v: Any) -> dict[str, float]:
    """Last-run state: entry name -> epoch seconds."""
    if not isinstance(v, dict):
        raise _Bad(f"expected a map, got {type(v).__name__}")
    if len(v) > MAX_ENTRIES:
        raise _Bad(f"more than {MAX_ENTRIES} entries")
    try:
        return {_name(k): _number(t) for k, t in v.items()}
    except _Bad as exc:
        raise _Bad(f"state: {exc}") from None


_KEY = ("key", "key", _name, None)
_RID = ("rid", "rid", _opt(_rid), None)
_STATE = ("state", "state", _slots, _dump_map)

TABLES: Final = (
    _Table(
        b.BeatLease,
        _KEY,
        ("holder", "holder", _name, None),
        ("ttl", "ttl", _seconds, None),
        _RID,
    ),
    _Table(b.BeatSave, _KEY, ("holder", "holder", _name, None), _STATE, _RID),
    _Table(
        b.BeatGrant,
        _KEY,
        ("granted", "granted", _flag, None),
        ("holder", "holder", _opt(_name), None),
        ("ttl", "ttl", _seconds, None),
        _STATE,
        _RID,
        ("reason", "reason", _opt(_text), None),
    ),
)
"""One table per beat message (one header frame, no body)."""
