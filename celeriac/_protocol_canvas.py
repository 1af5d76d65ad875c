"""Wire messages of the canvas lane (issue 8): what the hub tells a worker about revocations.

Pure values, like :mod:`celeriac._protocol` (which re-exports them); their wire spelling lives
in :mod:`celeriac._wire_canvas`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["RevokeHeld"]


@dataclass(frozen=True, slots=True)
class RevokeHeld:
    """hub -> worker: tasks you hold were revoked.

    A delivery not started yet (prefetched, or waiting for its type's rate limit) ends REVOKED
    at the worker without running; a running one is stopped when ``terminate`` is set
    (``signal``: the signal's name, ``SIGTERM`` by default) and ends REVOKED, else it finishes.
    """

    COMMAND: ClassVar[bytes] = b"CANVAS_REVOKED"
    ids: tuple[str, ...]
    terminate: bool = False
    signal: str | None = None
