"""The fast path of the hot headers (a task's, a result's): decoded and checked in C by msgspec.

A task header is decoded three times per task (the hub's ``PUB``, the worker's ``TASK``, and
the result's at the hub and the client), ~4 us each through msgpack and the checks of
:mod:`celeriac._wire_checks`. Here a msgspec struct made from the same table (no wire name is
spelled twice) decodes the usual header in ~0.4 us with the same checks: a name is a string of
at most ``MAX_NAME`` characters, a flag a bool, a count an int in range. Anything it cannot
take as the table would (a field of a rarer kind present: ``eta``, ``headers``...; any value it
refuses; a malformed map) returns None, and the caller decodes the header the usual way, which
accepts or raises the codec's own error: the fast path only ever accepts what the usual one
accepts, and never decides an error.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from celeriac import _protocol as p
from celeriac._wire_checks import _count, _flag, _long_text, _name, _Opt, _Table, _text

__all__ = ["FastHeader"]

_Name = Annotated[str, msgspec.Meta(max_length=p.MAX_NAME)]
_Text = Annotated[str, msgspec.Meta(max_length=p.MAX_TEXT)]
_Count = Annotated[int, msgspec.Meta(ge=0, le=p.MAX_COUNT)]

#: The checks msgspec makes as the table's own does (msgspec's int refuses a bool, its bool an
#: int, as the checks do).
_TYPES: dict[Callable[[Any], Any], Any] = {
    _name: _Name,
    _text: _Text,
    _long_text: str,
    _flag: bool,
    _count: _Count,
}


class FastHeader:
    """A table's header decoded by msgspec: :meth:`load` gives the dataclass, or None."""

    __slots__ = ("_body_at", "_cls", "_decode", "_rare", "_rare_defaults")

    def __init__(self, table: _Table) -> None:
        by_attr = {attr: (key, check) for key, attr, check, _ in table.fields}
        order = [f.name for f in dataclasses.fields(table.cls) if f.init]
        # The struct's fields in the dataclass's order (but ``body``, not in the header), so
        # that its values are the constructor's positional arguments as they are.
        fields: list[tuple[str, Any, Any]] = []
        rare: list[int] = []
        for attr in order:
            if attr == "body":
                continue
            check = by_attr[attr][1]
            optional = isinstance(check, _Opt)
            kind = _TYPES.get(check.check if isinstance(check, _Opt) else check)
            default = table.defaults[attr]
            if kind is None:  # checked by the usual path only: present -> fall back
                rare.append(len(fields))
                kind, optional = msgspec.Raw, False
            if default is dataclasses.MISSING:
                default = msgspec.NODEFAULT  # required: absent -> fall back
            fields.append((attr, kind | None if optional else kind, default))
        struct = msgspec.defstruct(
            f"_{table.cls.__name__}Header",
            fields,
            rename={attr: by_attr[attr][0] for attr, _, _ in fields},
            kw_only=True,
        )
        self._decode = msgspec.msgpack.Decoder(struct).decode
        self._cls = table.cls
        self._body_at = order.index("body")
        # Each index twice: itemgetter gives a tuple for two or more (and a table has one rare
        # field at least: its dataclass's ``raw`` aside, every table has a map or a list).
        self._rare = operator.itemgetter(*rare, *rare)
        self._rare_defaults = tuple(fields[i][2] for i in rare) * 2

    def load(self, header: bytes, body: bytes) -> Any:
        """The dataclass of ``header`` (with ``body`` and ``raw``), or None: decode it the
        usual way (a rare field present, or something the usual path must judge)."""
        try:
            values = msgspec.structs.astuple(self._decode(header))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if self._rare(values) != self._rare_defaults:
            return None  # a field of a rarer kind was sent: the usual path checks it
        at = self._body_at
        obj = self._cls(*values[:at], body, *values[at:])
        obj.raw = header
        return obj
