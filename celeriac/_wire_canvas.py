"""The wire tables of the canvas lane's messages (:mod:`celeriac._protocol_canvas`)."""

from __future__ import annotations

from typing import Final

from celeriac._protocol_canvas import RevokeHeld
from celeriac._wire_checks import _flag, _name, _names, _opt, _Table

__all__ = ["TABLES"]

#: Added to the codec's control commands by :mod:`celeriac._wire`.
TABLES: Final = (
    _Table(
        RevokeHeld,
        ("ids", "ids", _names, list),
        ("terminate", "terminate", _flag, None),
        ("signal", "signal", _opt(_name), None),
    ),
)
