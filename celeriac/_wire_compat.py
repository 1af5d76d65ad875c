"""Wire tables of issue 10's commands (:mod:`celeriac._protocol_compat`); :mod:`celeriac._wire`
adds :data:`TABLES` to its control commands."""

from __future__ import annotations

from typing import Any, Final

from celeriac import _protocol_compat as c
from celeriac._wire_checks import _Bad, _count, _flag, _name, _number, _opt, _rid, _Table

__all__ = ["TABLES"]


def _meta(v: Any) -> bytes:
    if not isinstance(v, bytes) or len(v) > c.MAX_META:
        raise _Bad(f"expected at most {c.MAX_META} bytes")
    return v


def _args(v: Any) -> bytes:
    if not isinstance(v, bytes) or len(v) > c.MAX_ARGS:
        raise _Bad(f"expected at most {c.MAX_ARGS} bytes")
    return v


TABLES: Final = (
    _Table(
        c.TaskState,
        ("id", "id", _name, None),
        ("tag", "tag", _opt(_name), None),
        ("state", "state", _opt(_name), None),
        ("meta", "meta", _meta, None),
        ("ct", "content_type", _name, None),
        ("extended", "extended", _flag, None),
    ),
    _Table(c.InfoQuery, ("id", "id", _name, None), ("rid", "rid", _opt(_rid), None)),
    _Table(
        c.TaskInfo,
        ("id", "id", _name, None),
        ("state", "state", _name, None),
        ("rid", "rid", _opt(_rid), None),
        ("meta", "meta", _opt(_meta), None),
        ("ct", "content_type", _opt(_name), None),
        ("name", "name", _opt(_name), None),
        ("queue", "queue", _opt(_name), None),
        ("worker", "worker", _opt(_name), None),
        ("retries", "retries", _opt(_count), None),
        ("date_done", "date_done", _opt(_number), None),
        ("args", "args", _opt(_args), None),
        ("args_type", "args_type", _opt(_name), None),
    ),
)
"""One table per command of :mod:`celeriac._protocol_compat`."""
