"""Beat at the hub: one lease per schedule, and each schedule's last-run state, both durable.

How it works
------------
Any number of beats may run for one schedule (its ``key``, the app's name); each sends
``BEAT_LEASE`` every heartbeat. The hub grants the lease to the first that asks while nobody
holds it (or the holder's lease has run out: ``ttl`` seconds after its last renewal, measured
on the hub's clock), and renews it for the holder; every other beat gets ``granted`` False with
the holder's name and how long its lease still runs. A holder that stops says ``ttl`` 0 and the
lease is free at once; one that dies (``kill -9``) loses it ``ttl`` seconds after its last
renewal, and the next standby beat to ask takes it over.

Only the holder fires. After the hub confirmed its publishes, it sends ``BEAT_SAVE`` with each
entry's last slot; the hub stores it only if the sender still holds the lease, and answers
whether it does (a holder that was paused past its lease learns that it lost it).

Bounded: the hub keeps at most ``hub_max_beat_leases`` leases in RAM (a cache of the store).
A new schedule over that cap evicts leases that nobody holds any more (released or run out:
their rows go too); if every one is held, the new schedule is refused with the reason in its
``BEAT_GRANT``, and its beat logs it. Held leases are never evicted.

Both the lease (holder, expiry as epoch seconds) and the state are kept in the store's
metadata, written in the loop turn that changed them and committed with it: a restarted hub
still knows who holds the lease until when, and each entry's last run. A new holder reads the
state in its grant, so a beat restarted, or taken over, neither skips nor repeats a slot. A
publish repeated anyway (a holder that died after publishing and before saving) carries the
task id derived from its entry and slot (:func:`celeriac._beatplan.slot_task_id`), and the hub
drops it as a duplicate (queued, recently done, or with a stored result). One narrow case stays
at-least-once: the holder dies between the confirm and the save, *and* the hub restarts before
the next holder republishes, *and* the task already ran with ``ignore_result`` (the hub's
memory of recently done ids does not survive a restart, and no result was stored).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from celeriac._log import get_logger

from .. import protocol as p
from .base import HubBase
from .limits import MAX_BEAT_LEASES
from .model import Peer

__all__ = ["MAX_LEASE_TTL", "BeatLeases", "Lease"]

_log = get_logger("celeriac.hub")

#: The longest lease granted at once (seconds): a beat renews it every heartbeat.
MAX_LEASE_TTL: Final = 3600.0
_LEASE_KEY: Final = "beat.lease."
_STATE_KEY: Final = "beat.state."


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a schedule's lease, and until when (epoch seconds, the hub's clock)."""

    holder: str
    expires: float

    def held(self, now: float) -> bool:
        """Whether the lease still runs at ``now``."""
        return now < self.expires


class BeatLeases(HubBase):
    """``BEAT_LEASE`` and ``BEAT_SAVE``: see the module docstring."""

    #: Leases kept in RAM at most (``hub_max_beat_leases``).
    max_beat_leases: int = MAX_BEAT_LEASES

    @functools.cached_property
    def _leases(self) -> dict[str, Lease]:
        """Leases by schedule key, read from the store on first use of each key."""
        return {}

    def _lease(self, key: str) -> Lease | None:
        if key in self._leases:
            return self._leases[key]
        raw = self.store.get_meta(_LEASE_KEY + key)
        if raw is None:
            return None  # only leases are cached: asking about a key adds nothing
        holder, expires = msgpack.unpackb(raw)
        if not holder:  # a released lease, as older hubs wrote it
            return None
        lease = self._leases[key] = Lease(str(holder), float(expires))
        return lease

    def _room_for(self, key: str, now: float) -> bool:
        """Whether ``key`` may have a lease in RAM: it has one, or there is room, or leases
        nobody holds can be evicted to make some (their rows deleted: absent means free)."""
        if key in self._leases or len(self._leases) < self.max_beat_leases:
            return True
        for old, lease in list(self._leases.items()):
            if not lease.held(now):
                del self._leases[old]
                self.store.delete_meta(_LEASE_KEY + old)
        return len(self._leases) < self.max_beat_leases

    def _set_lease(self, key: str, lease: Lease | None) -> None:
        if lease is None:  # released: no row means nobody holds it
            self._leases.pop(key, None)
            self.store.delete_meta(_LEASE_KEY + key)
            return
        self._leases[key] = lease
        self.store.set_meta(_LEASE_KEY + key, msgpack.packb([lease.holder, lease.expires]))

    def beat_state(self, key: str) -> dict[str, float]:
        """The stored last-run state of a schedule (entry -> epoch seconds of its last slot)."""
        raw = self.store.get_meta(_STATE_KEY + key)
        return {} if raw is None else dict(msgpack.unpackb(raw))

    def beat_statistics(self) -> dict[str, dict[str, Any]]:
        """The schedules whose lease is held now, with the holder and the seconds left (shown
        by ``app.control.hub("stats")`` / ``celeriac inspect``'s hub statistics)."""
        now = self.clock.time()
        return {
            key: {"holder": lease.holder, "expires_in": round(lease.expires - now, 3)}
            for key, lease in self._leases.items()
            if lease.held(now)
        }

    def beat_holder(self, key: str) -> str | None:
        """Who holds the lease of ``key`` now, if anyone."""
        lease = self._lease(key)
        return lease.holder if lease is not None and lease.held(self.clock.time()) else None

    def _on_beat_lease(self, peer: Peer | None, identity: bytes, msg: p.BeatLease) -> None:
        now = self.clock.time()
        lease = self._lease(msg.key)
        mine = lease is not None and lease.holder == msg.holder
        if msg.ttl <= 0:  # release
            if mine:
                self._set_lease(msg.key, None)
                _log.info("beat_lease_released", key=msg.key, holder=msg.holder)
            self._send(identity, p.BeatGrant(msg.key, False, rid=msg.rid))
            return
        if lease is not None and lease.held(now) and not mine:
            left = lease.expires - now
            self._send(identity, p.BeatGrant(msg.key, False, lease.holder, left, rid=msg.rid))
            return
        if not self._room_for(msg.key, now):
            self.counters["refused"] += 1
            reason = (
                f"the hub holds hub_max_beat_leases={self.max_beat_leases} leases of other "
                "schedules, all in use: raise it, or stop beats of schedules no longer needed"
            )
            _log.warning("beat_lease_refused", key=msg.key, holder=msg.holder, reason=reason)
            self._send(identity, p.BeatGrant(msg.key, False, rid=msg.rid, reason=reason))
            return
        ttl = min(msg.ttl, MAX_LEASE_TTL)
        self._set_lease(msg.key, Lease(msg.holder, now + ttl))
        if not (mine and lease is not None and lease.held(now)):
            previous = lease.holder if lease is not None and not mine else None
            _log.info("beat_lease_granted", key=msg.key, holder=msg.holder, previous=previous)
        state = self.beat_state(msg.key)
        self._send(identity, p.BeatGrant(msg.key, True, msg.holder, ttl, state, rid=msg.rid))

    def _on_beat_save(self, peer: Peer | None, identity: bytes, msg: p.BeatSave) -> None:
        now = self.clock.time()
        lease = self._lease(msg.key)
        if lease is None or lease.holder != msg.holder or not lease.held(now):
            holder = lease.holder if lease is not None and lease.held(now) else None
            _log.warning("beat_save_refused", key=msg.key, sender=msg.holder, holder=holder)
            self._send(identity, p.BeatGrant(msg.key, False, holder, rid=msg.rid))
            return
        self.store.set_meta(_STATE_KEY + msg.key, msgpack.packb(dict(msg.state)))
        left = lease.expires - now
        self._send(identity, p.BeatGrant(msg.key, True, msg.holder, left, rid=msg.rid))
