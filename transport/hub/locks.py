"""Locks held at the hub, with expiry: ``app.lock(name, expire=...)`` and ``@app.task(lock=...)``.

How it works
------------
A lock is a name, the token of its holder (``owner``, made by the client's
:class:`~celeriac._lock.Lock`) and the wall-clock time it expires. ``LOCK_ACQUIRE`` takes a free
(or expired) lock, or extends it when the same owner asks again (so a resent request after a
lost reply is harmless); it is answered ``ACQUIRED`` or ``LOCKED``. ``LOCK_RELEASE`` frees it
only for its owner (``RELEASED``, else ``NOT_HELD``); ``LOCK_QUERY`` says ``LOCKED`` or
``UNLOCKED``. Every answer is a ``REPLY`` carrying the request's ``rid``.

A blocking acquire sends ``wait``: while another owner holds the lock, the request waits at
the hub in the name's FIFO of waiters and is answered ``ACQUIRED`` the moment the lock is
released or expires (first come, first served; a waiter whose peer is gone is skipped), or
``LOCKED`` when its ``wait`` runs out (checked every loop turn, :meth:`Locks._locks_tick`).

Expiry is checked whenever a lock is looked at and every loop turn while someone waits for it,
so a crashed holder blocks the name for at most ``expire`` seconds. The table is written to
the store (one meta entry, committed with the turn) on every change, and read back when the
hub restarts: a lock survives a hub restart with its original expiry (waiters do not: their
clients ask again).
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass

import msgpack

from celeriac._log import get_logger

from .. import protocol as p
from .base import HubBase
from .model import Peer

__all__ = ["Locks"]

_log = get_logger("celeriac.hub")

#: The store's meta key of the lock table.
LOCKS_META_KEY = "locks"
#: Most locks held at once (a client that leaks names cannot grow the hub without bound).
MAX_LOCKS = 100_000


@dataclass(slots=True)
class _Waiter:
    identity: bytes
    owner: str
    expire: float
    rid: int | str | None
    until: float  # monotonic


class Locks(HubBase):
    """The lock table and its three commands; see the module docstring."""

    @functools.cached_property
    def _locks(self) -> dict[str, tuple[str, float]]:
        """name -> (owner, expires at): loaded from the store on first use."""
        raw = self.store.get_meta(LOCKS_META_KEY)
        table: dict[str, tuple[str, float]] = {}
        if raw:
            try:
                for name, (owner, expires) in msgpack.unpackb(raw, raw=False).items():
                    table[str(name)] = (str(owner), float(expires))
            except (ValueError, TypeError, AttributeError) as exc:  # not the map we wrote
                _log.error("locks_unreadable", error=str(exc))
                table.clear()
        return table

    @functools.cached_property
    def _lock_waiters(self) -> dict[str, deque[_Waiter]]:
        """name -> blocking acquires waiting for it, first come first served."""
        return {}

    def _held(self, name: str) -> tuple[str, float] | None:
        held = self._locks.get(name)
        if held is not None and held[1] <= self.clock.time():
            del self._locks[name]
            _log.info("lock_expired", name=name)
            self._hand_over(name)
            self._save_locks()
            return self._locks.get(name)
        return held

    def _hand_over(self, name: str) -> None:
        """The lock is free: its first waiter still connected gets it."""
        waiters = self._lock_waiters.get(name)
        while waiters:
            waiter = waiters.popleft()
            if waiter.identity in self._peers:
                self._locks[name] = (waiter.owner, self.clock.time() + waiter.expire)
                self._answer(waiter.identity, name, "ACQUIRED", waiter.rid)
                break
        if not waiters:
            self._lock_waiters.pop(name, None)

    def _save_locks(self) -> None:
        self.store.set_meta(LOCKS_META_KEY, msgpack.packb(self._locks, use_bin_type=True))

    def _answer(self, identity: bytes, name: str, state: str, rid: int | str | None) -> None:
        self._send(identity, p.Reply(name, state, rid))

    def _on_lock_acquire(self, peer: Peer | None, identity: bytes, msg: p.LockAcquire) -> None:
        held = self._held(msg.name)
        if held is not None and held[0] != msg.owner:
            if msg.wait:
                until = self.clock.monotonic() + msg.wait
                waiter = _Waiter(identity, msg.owner, msg.expire, msg.rid, until)
                self._lock_waiters.setdefault(msg.name, deque()).append(waiter)
            else:
                self._answer(identity, msg.name, "LOCKED", msg.rid)
            return
        if held is None and len(self._locks) >= MAX_LOCKS:
            self._expire_all()
        if held is None and len(self._locks) >= MAX_LOCKS:
            self._answer(identity, msg.name, "LOCKED", msg.rid)
            return
        self._locks[msg.name] = (msg.owner, self.clock.time() + msg.expire)
        self._save_locks()
        self._answer(identity, msg.name, "ACQUIRED", msg.rid)

    def _on_lock_release(self, peer: Peer | None, identity: bytes, msg: p.LockRelease) -> None:
        held = self._held(msg.name)
        if held is None or held[0] != msg.owner:
            self._answer(identity, msg.name, "NOT_HELD", msg.rid)
            return
        del self._locks[msg.name]
        self._answer(identity, msg.name, "RELEASED", msg.rid)
        self._hand_over(msg.name)
        self._save_locks()

    def _on_lock_query(self, peer: Peer | None, identity: bytes, msg: p.LockQuery) -> None:
        state = "LOCKED" if self._held(msg.name) is not None else "UNLOCKED"
        self._answer(identity, msg.name, state, msg.rid)

    def _expire_all(self) -> None:
        now = self.clock.time()
        for name in [n for n, (_, at) in self._locks.items() if at <= now]:
            del self._locks[name]
        self._save_locks()

    def _locks_tick(self) -> None:
        """Each loop turn while someone waits: hand expired locks over, answer ``LOCKED`` to
        waiters whose wait ran out."""
        if not self._lock_waiters:
            return
        mono = self.clock.monotonic()
        for name in list(self._lock_waiters):
            if self._held(name) is None:
                self._hand_over(name)
                self._save_locks()
            waiters = self._lock_waiters.get(name)
            if not waiters:
                continue
            for waiter in [w for w in waiters if w.until <= mono]:
                waiters.remove(waiter)
                if waiter.identity in self._peers:
                    self._answer(waiter.identity, name, "LOCKED", waiter.rid)
            if not waiters:
                del self._lock_waiters[name]
