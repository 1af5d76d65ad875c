"""The canvas: signatures, chains, groups and chords (Celery's ``celery.canvas`` names).

How chains run is explained in :mod:`celeriac._signature`; how chords are counted at the hub,
in :mod:`celeriac.transport.hub.chords`.
"""

from __future__ import annotations

from ._chord import chord, chunks, xmap, xstarmap
from ._signature import Signature, chain, group, maybe_signature, signature

#: Celery's older name of :func:`signature`.
subtask = signature

__all__ = [
    "Signature",
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
