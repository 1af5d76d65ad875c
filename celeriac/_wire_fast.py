"""The fast path of the hot headers (a task's, a result's, a delivery's info): decoded and
checked in C by msgspec.

A task header is decoded twice per task (the hub's ``PUB``, the worker's ``TASK``) and a
result's at the hub, ~4 us each through msgpack and the checks of :mod:`celeriac._wire_checks`.
Here a msgspec struct made from the same table (no wire name is spelled twice) decodes the
usual header in ~0.4 us with the same checks: a name is a string of at most ``MAX_NAME``
characters, a flag a bool, a count an int in range. Anything it cannot take as the table would
(a field of a rarer kind present: ``eta``, ``headers``...; an unknown key; any value it
refuses; a malformed map) gives None, and the caller decodes the header the usual way, which
accepts it or raises the codec's own error: the fast path only ever accepts what the usual one
accepts, and never words an error. Decoding only: the wire format is unchanged.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import msgspec

from celeriac import _protocol as p
from celeriac._wire_checks import _count, _flag, _long_text, _name, _Opt, _Table, _text

__all__ = ["FastHeader", "FastMap"]

_Name = Annotated[str, msgspec.Meta(max_length=p.MAX_NAME)]
_Text = Annotated[str, msgspec.Meta(max_length=p.MAX_TEXT)]
_Count = Annotated[int, msgspec.Meta(ge=0, le=p.MAX_COUNT)]
Check = Callable[[Any], Any]
_astuple = msgspec.structs.astuple

#: The checks msgspec makes as the table's own does (msgspec's int refuses a bool, its bool an
#: int, as the checks do).
_TYPES: dict[Callable[[Any], Any], Any] = {
    _name: _Name,
    _text: _Text,
    _long_text: str,
    _flag: bool,
    _count: _Count,
}


class FastMap:
    """A wire map of known fields decoded by msgspec: :meth:`values` gives their values in
    the order given, or None (decode it the usual way)."""

    __slots__ = ("_decode", "_rare", "_rare_defaults")

    def __init__(self, name: str, fields: Sequence[tuple[str, str, Check, Any]]) -> None:
        """``fields``: ``(wire key, attribute, check, default)``; ``dataclasses.MISSING``: the
        field is required."""
        specs: list[tuple[str, Any, Any]] = []
        rare: list[int] = []
        for _, attr, check, default in fields:
            optional = isinstance(check, _Opt)
            kind = _TYPES.get(check.check if isinstance(check, _Opt) else check)
            if kind is None:  # checked by the usual path only: present -> fall back
                rare.append(len(specs))
                kind, optional = msgspec.Raw, False
            # A required field absent: msgspec refuses, the usual path says so.
            value = msgspec.NODEFAULT if default is dataclasses.MISSING else default
            specs.append((attr, kind | None if optional else kind, value))
        # An unknown key falls back too: msgspec would skip its value unchecked, where the usual
        # path refuses what msgpack refuses in it (a map with a non-string key...).
        struct = msgspec.defstruct(
            name,
            specs,
            rename={attr: key for key, attr, _, _ in fields},
            kw_only=True,
            forbid_unknown_fields=True,
        )
        self._decode = msgspec.msgpack.Decoder(struct).decode
        # itemgetter gives a tuple for two indices or more: one rare field is asked twice.
        # (Not every one twice: for a task's seven, 190 -> 120 ns a header.)
        asked = rare * 2 if len(rare) == 1 else rare
        self._rare = operator.itemgetter(*asked) if rare else None
        self._rare_defaults = tuple(specs[i][2] for i in asked)

    def values(self, data: bytes) -> tuple[Any, ...] | None:
        """The fields' values, or None: a rare field was sent, or something the usual path
        must judge (it raises the codec's error, or takes what msgspec would not)."""
        try:
            values = _astuple(self._decode(data))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if self._rare is not None and self._rare(values) != self._rare_defaults:
            return None
        return values


def _not_in_header(value: Any) -> Any:
    """The check of ``body``, which is no header field: a key of that name is a rare field
    (present: the usual path judges the header, and ignores it)."""
    return value


class FastHeader:
    """A table's header decoded by msgspec: :meth:`load` gives the dataclass, or None (for the
    hot dataclasses, not frozen at run time: ``body`` and ``raw`` are set after)."""

    __slots__ = ("_cls", "_map")

    def __init__(self, table: _Table) -> None:
        by_attr = {attr: (key, check) for key, attr, check, _ in table.fields}
        by_attr["body"] = ("body", _not_in_header)
        # The fields in the dataclass's order, ``body`` (None) too, so that the values are the
        # constructor's positional arguments as they are: one tuple passed on as it is, where
        # putting the body between two slices of it cost 0.4 us a header (issue 18).
        order = [f.name for f in dataclasses.fields(table.cls) if f.init]
        defaults = {**table.defaults, "body": None}
        fields = [(*by_attr[a], a, defaults[a]) for a in order]
        self._map = FastMap(f"_{table.cls.__name__}Header", [(k, a, c, d) for k, c, a, d in fields])
        self._cls = table.cls

    def load(self, header: bytes, body: bytes) -> Any:
        """The dataclass of ``header`` (with ``body`` and ``raw``), or None: decode it the
        usual way."""
        values = self._map.values(header)
        if values is None:
            return None
        obj = self._cls(*values)
        obj.body = body
        obj.raw = header
        return obj
