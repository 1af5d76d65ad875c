"""Where the hub's state used to live: it is now :mod:`celeriac.transport.hub`, one module per
job; this name stays for the hub server and existing imports."""

from __future__ import annotations

from .hub.model import POISON_QUEUE
from .hub.state import HubState

__all__ = ["POISON_QUEUE", "HubState"]
