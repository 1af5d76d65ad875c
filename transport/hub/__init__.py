"""The hub's logic by job (sans-IO); :class:`~.state.HubState` is the entry point."""

from .state import HubState

__all__ = ["HubState"]
