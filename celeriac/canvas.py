"""The canvas: signatures, chains, groups and chords (Celery's ``celery.canvas`` names).

How chains run is explained in :mod:`celeriac._signature`; how chords are counted at the hub,
in :mod:`celeriac.transport.hub.chords`.
"""

from __future__ import annotations

from typing import Any

from ._canvas_shapes import NO_STAMPING
from ._chain_group import chain, group
from ._chord import chord, chunks, xmap, xstarmap

#: Celery's older name of :func:`signature`.
from ._signature import Signature, maybe_signature, signature

#: Celery's older name of :func:`signature`.
subtask = signature


class StampingVisitor:
    """Refused (Celery 5.3's canvas stamping): subclassing works, making one raises
    NotImplementedError with the reason (:data:`celeriac._signature.NO_STAMPING`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(NO_STAMPING)


__all__ = [
    "Signature",
    "StampingVisitor",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "subtask",
    "xmap",
    "xstarmap",
]
