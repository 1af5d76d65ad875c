"""Giving memory back once the hub goes idle after a burst (a drained backlog).

How it works
------------
A Python dict or set never shrinks when entries are deleted: after 200,000 messages were
queued and drained, the hub's tables of messages and of the body window still have room for
200,000 (about 13 MiB). :func:`shrink_containers` rebuilds each of the hub's per-message
containers whose table is far larger than its entries need (a copy is sized to its entries).
A full garbage collection then empties Python's free lists (up to thousands of spare tuples,
floats, dicts, each holding a block of an otherwise free memory arena), and
:func:`malloc_trim` asks glibc to return the free pages of its heap to the system
(``malloc_trim(0)``; nothing elsewhere). The server does all three once the hub has had
no traffic for :data:`IDLE_SECONDS` after a busy spell (see
:meth:`~celeriac.transport.hubserver.HubServer.run`): never during traffic.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from collections.abc import MutableMapping
from typing import Any, Final

from celeriac._clock import Clock
from celeriac._log import get_logger

from .base import HubBase

__all__ = ["IDLE_SECONDS", "IdleRelease", "malloc_trim", "shrink_containers"]

_log = get_logger("celeriac.hub")
#: Seconds without a message after which an active hub gives memory back.
IDLE_SECONDS: Final = 1.0
#: A container's table under this many bytes is left alone (rebuilding it gains nothing).
_SMALL: Final = 64 * 1024
#: Bytes per entry past which a table is rebuilt (a compact one needs well under 200).
_SPARSE: Final = 400


def _sparse(container: object, entries: int) -> bool:
    size = sys.getsizeof(container)
    return size > _SMALL and size > _SPARSE * max(entries, 1)


def _shrink_map(table: MutableMapping[Any, Any]) -> bool:
    if not _sparse(table, len(table)):
        return False
    entries = list(table.items())  # in place: other parts may hold the same object
    table.clear()
    table.update(entries)
    return True


def _shrink_set(members: set[Any]) -> bool:
    if not _sparse(members, len(members)):
        return False
    kept = list(members)
    members.clear()
    members.update(kept)
    return True


def shrink_containers(hub: HubBase) -> int:
    """Rebuild the hub's containers left much larger than their entries; how many were."""
    maps: list[MutableMapping[Any, Any]] = [
        hub._messages,
        hub._body_window,
        hub._waiters,
        hub._confirms,
        hub.worker_sent,
        hub._peers,
    ]
    shrunk = sum(_shrink_map(table) for table in maps)
    shrunk += sum(_shrink_set(peer.inflight) for peer in hub._peers.values())
    return shrunk


_libc: Any = None


def malloc_trim() -> bool:
    """Return glibc's free heap pages to the system; False where there is no glibc."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
            _libc = False
    if _libc is False:
        return False
    return bool(_libc.malloc_trim(0))


class IdleRelease:
    """Decides when the server gives memory back: once per busy spell, after
    :data:`IDLE_SECONDS` in which no message was published, delivered or acknowledged
    (heartbeats do not count: a hub with idle workers connected is idle), and only if at
    least half the messages held at the spell's peak are gone (a hub holding a large backlog
    has little to give back, and a full collection over it would cost a pause each time)."""

    __slots__ = ("_busy", "_clock", "_last", "_peak", "_seen")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._busy = False
        self._last = 0.0
        self._seen = -1
        self._peak = 0

    def turn(self, hub: HubBase) -> bool:
        """One turn of the server's loop; True if memory was given back in it."""
        now = self._clock.monotonic()
        held = len(hub._messages)
        self._peak = max(self._peak, held)
        counters = hub.counters
        seen = counters["published"] + counters["delivered"] + counters["acked"]
        if seen != self._seen:
            self._busy, self._last, self._seen = self._seen >= 0, now, seen
            return False
        if not self._busy or now - self._last < IDLE_SECONDS:
            return False
        self._busy = False
        if 2 * held > self._peak:
            return False
        self._peak = held
        shrunk = shrink_containers(hub)
        gc.collect()  # a full collection also empties Python's free lists (tuples, floats...)
        trimmed = malloc_trim()
        _log.debug("hub_memory_released", containers_shrunk=shrunk, trimmed=trimmed)
        return True
