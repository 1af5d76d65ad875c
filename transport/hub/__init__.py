"""The hub's logic by job (sans-IO); :class:`~.state.HubState` is the entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import HubState

__all__ = ["HubState"]


def __getattr__(name: str) -> Any:
    """Import :class:`~.state.HubState` at first use: a worker imports small parts of this
    package (``limits``) and must not pay for the whole hub at start-up (issue 18)."""
    if name == "HubState":
        from .state import HubState  # noqa: PLC0415 - see above

        globals()[name] = HubState
        return HubState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
