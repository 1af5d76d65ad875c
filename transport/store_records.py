"""The rows a hub store keeps, as the hub hands them over and reads them back (every store's:
:mod:`.store` re-exports them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataclasses import dataclass as _hot
else:  # built once or twice per task: slotted, without the frozen check at run time
    from celeriac._protocol_parts import _hot

__all__ = ["StoredMessage", "StoredResult"]


@_hot(frozen=True, slots=True)
class StoredMessage:
    """A queued message as the store keeps it."""

    id: str
    queue: str
    priority: int
    eta: float | None
    seq: int
    header: bytes
    body: bytes


@_hot(frozen=True, slots=True)
class StoredResult:
    """A task outcome as the store keeps it (header and body exactly as the worker sent them)."""

    id: str
    state: str
    header: bytes
    body: bytes
