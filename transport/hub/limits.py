"""The hub's limits on what one peer may make it hold, in one place: message sizes, credit
(deliveries outstanding), waits, the RAM kept for queued bodies and beat leases (see
:mod:`.bodies`, :mod:`.ownership`, :mod:`.waits`, :mod:`.beat`). Each is a setting, read by
:meth:`HubLimits.from_settings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "DEFAULT_BODY_WINDOW",
    "MAX_BEAT_LEASES",
    "MAX_CREDIT",
    "MAX_WAITS_PER_PEER",
    "SHARED_BEAT_INTERVAL",
    "SHARED_LEASE_TTL",
    "HubLimits",
    "too_big",
]

#: ``hub_max_credit_per_peer``'s default: deliveries outstanding at once to one peer.
MAX_CREDIT: Final = 100_000
#: ``hub_max_waits_per_peer``'s default: results one peer may wait for at once.
MAX_WAITS_PER_PEER: Final = 100_000
#: ``hub_body_window_size``'s default: bytes of recently published bodies kept in RAM.
DEFAULT_BODY_WINDOW: Final = 32 * 1024 * 1024
#: ``hub_max_beat_leases``'s default: schedules whose beat lease the hub keeps (see .beat).
MAX_BEAT_LEASES: Final = 1000
#: ``hub_shared_lease_ttl``'s default: seconds a shared hub may go unseen before the others
#: take back the rows it claimed (see ..store_pg_shared).
SHARED_LEASE_TTL: Final = 10.0
#: ``hub_shared_beat_interval``'s default: seconds between two beats of a shared hub.
SHARED_BEAT_INTERVAL: Final = 1.0


@dataclass(frozen=True, slots=True)
class HubLimits:
    """The per-peer caps and the body window, as the hub's settings give them."""

    max_credit: int = MAX_CREDIT
    max_waits: int = MAX_WAITS_PER_PEER
    body_window_size: int = DEFAULT_BODY_WINDOW
    max_beat_leases: int = MAX_BEAT_LEASES
    #: A shared hub's lease on the rows it claims, and its beat (``hub_store_shared``).
    shared_lease_ttl: float = SHARED_LEASE_TTL
    shared_beat_interval: float = SHARED_BEAT_INTERVAL

    @classmethod
    def from_settings(cls, conf: Mapping[str, Any]) -> HubLimits:
        """``hub_max_credit_per_peer``, ``hub_max_waits_per_peer``, ``hub_body_window_size``,
        ``hub_max_beat_leases``, ``hub_shared_lease_ttl``, ``hub_shared_beat_interval`` (a
        lease shorter than two beats is refused: a live hub would lose its tasks)."""
        ttl, beat = float(conf["hub_shared_lease_ttl"]), float(conf["hub_shared_beat_interval"])
        if ttl < 2 * beat:
            raise ImproperlyConfigured(
                f"hub_shared_lease_ttl ({ttl:g} s) must be at least twice "
                f"hub_shared_beat_interval ({beat:g} s): a live hub would lose its tasks"
            )
        return cls(
            max_credit=conf["hub_max_credit_per_peer"],
            max_waits=conf["hub_max_waits_per_peer"],
            body_window_size=conf["hub_body_window_size"],
            max_beat_leases=conf["hub_max_beat_leases"],
            shared_lease_ttl=ttl,
            shared_beat_interval=beat,
        )


def too_big(size: int, limit: int) -> str:
    """The refusal for a body over ``broker_max_message_size``."""
    return (
        f"message too large: a body of {size} bytes exceeds broker_max_message_size "
        f"({limit} bytes); pass large data by reference (a path, a URL, an object key)"
    )
