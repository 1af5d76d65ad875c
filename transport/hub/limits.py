"""The hub's limits on what one peer may make it hold (message sizes); see also
:mod:`.ownership` for credit."""

from __future__ import annotations

__all__ = ["too_big"]


def too_big(size: int, limit: int) -> str:
    """The refusal for a body over ``broker_max_message_size``."""
    return (
        f"message too large: a body of {size} bytes exceeds broker_max_message_size "
        f"({limit} bytes); pass large data by reference (a path, a URL, an object key)"
    )
