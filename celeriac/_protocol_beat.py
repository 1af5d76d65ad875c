"""Beat's wire messages: the lease one beat holds at the hub, and each entry's last run.

How they are used (``transport/hub/beat.py`` answers, ``runtime/beat.py`` asks): a beat
sends :class:`BeatLease` every heartbeat; the hub grants the lease for ``key`` to ``holder``
for ``ttl`` seconds when nobody else holds it, and answers :class:`BeatGrant` with the durable
last-run state of the schedule. Only the holder fires; after its publishes are confirmed it
stores the new state with :class:`BeatSave`, which the hub refuses from anyone but the holder.
``ttl`` 0 in a :class:`BeatLease` releases the lease (a beat that stops). ``rid`` pairs an
answer with its request. State values are epoch seconds (UTC) of each entry's last slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

__all__ = ["BeatGrant", "BeatLease", "BeatSave"]


@dataclass(frozen=True, slots=True)
class BeatLease:
    """beat -> hub: grant (or renew) me the lease of ``key`` for ``ttl`` s (0: release it)."""

    COMMAND: ClassVar[bytes] = b"BEAT_LEASE"
    key: str
    holder: str
    ttl: float
    rid: int | str | None = None


@dataclass(frozen=True, slots=True)
class BeatSave:
    """beat -> hub: the holder's new last-run state of ``key`` (refused from a non-holder)."""

    COMMAND: ClassVar[bytes] = b"BEAT_SAVE"
    key: str
    holder: str
    state: Mapping[str, float] = field(default_factory=dict)
    rid: int | str | None = None


@dataclass(frozen=True, slots=True)
class BeatGrant:
    """hub -> beat: who holds ``key`` now (``granted``: you do) for ``ttl`` more seconds, and
    the stored last-run state (sent to the holder only). ``reason``: why a lease nobody holds
    was refused (the hub's cap on leases, ``hub_max_beat_leases``)."""

    COMMAND: ClassVar[bytes] = b"BEAT_GRANT"
    key: str
    granted: bool
    holder: str | None = None
    ttl: float = 0.0
    state: Mapping[str, float] = field(default_factory=dict)
    rid: int | str | None = None
    reason: str | None = None
