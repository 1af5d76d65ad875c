"""Where the hub's state used to live: it is now :mod:`celeriac.transport.hub`, one module per
job; this name stays for the hub server (which state class it runs) and existing imports."""

from __future__ import annotations

from .hub.model import POISON_QUEUE
from .hub.state import HubState

__all__ = ["POISON_QUEUE", "HubState", "state_class"]


def state_class(shared: bool) -> type[HubState]:
    """The hub state: queues in RAM, or (``shared``) in the table other hubs share."""
    if not shared:
        return HubState
    from .hub.shared import SharedHubState  # noqa: PLC0415

    return SharedHubState
