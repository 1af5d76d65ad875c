"""The ids of the tasks done most recently, kept compactly to drop duplicate publishes.

How it works
------------
The hub remembers the last :data:`~.model.RECENT_DONE_LIMIT` ids it saw done, so that a
publish sent again (a client resending after a lost confirmation) is dropped without a store
lookup. Kept as strings in a dict, 100,000 ids cost about 25 MiB of small objects, each
allocated among the short-lived ones of its turn: after a drain they pin Python's memory
arenas, and the hub's RSS never comes back. Here an id is kept as its 64-bit hash only, in two
arrays allocated once: a ring (the order of arrival, oldest overwritten) and an
open-addressing table (linear probing, deletion by backward shift) for membership. About
2.8 MiB at 100,000 ids, whatever the traffic, and no object per id.

A hash is not the id: two ids with the same 64-bit hash would make a new publish look like a
duplicate. With 100,000 ids kept, the chance for one publish is about 100,000 / 2**64
(5e-15), far below that of a lost message on any disk. Hashes are Python's string hashes, per
process, never stored.
"""

from __future__ import annotations

from array import array

__all__ = ["RecentIds"]

_EMPTY = 0  # a free slot in the table; an id hashing to 0 is kept as 1


def _key(mid: str) -> int:
    return hash(mid) or 1


class RecentIds:
    """The last ``capacity`` distinct ids added; the oldest is forgotten first."""

    __slots__ = ("_capacity", "_count", "_mask", "_next", "_ring", "_table")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        size = 4
        while size < 2 * capacity:  # at most half full: probes stay short
            size *= 2
        self._mask = size - 1
        self._table = array("q", bytes(8 * size))
        self._ring = array("q", bytes(8 * capacity))
        self._next = 0  # where the next id goes in the ring (the oldest, once full)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, mid: object) -> bool:
        if not isinstance(mid, str):
            return False
        key = hash(mid) or 1  # _key and _find inlined: asked once per publish
        table, mask = self._table, self._mask
        i = key & mask
        while True:
            slot = table[i]
            if slot == key:
                return True
            if slot == _EMPTY:
                return False
            i = (i + 1) & mask

    def add(self, mid: str) -> None:
        """Remember ``mid`` (an id already kept keeps its place, as in a dict)."""
        key = hash(mid) or 1  # _key and _find inlined: called once per task done
        table, mask = self._table, self._mask
        i = key & mask
        while True:
            slot = table[i]
            if slot == key:
                return
            if slot == _EMPTY:
                break
            i = (i + 1) & mask
        ring, at = self._ring, self._next
        if self._count == self._capacity:
            self._remove(ring[at])  # may shift entries back: probe for the free slot again
            i = key & mask
            while table[i] != _EMPTY:
                i = (i + 1) & mask
        else:
            self._count += 1
        ring[at] = key
        self._next = at + 1 if at + 1 < self._capacity else 0
        table[i] = key

    def _find(self, key: int) -> int:
        table, mask = self._table, self._mask
        i = key & mask
        while True:
            slot = table[i]
            if slot == key:
                return i
            if slot == _EMPTY:
                return -1
            i = (i + 1) & mask

    def _remove(self, key: int) -> None:
        """Take ``key`` out of the table, shifting back the entries its slot displaced."""
        i = self._find(key)
        if i < 0:
            return
        table, mask = self._table, self._mask
        j = i
        while True:
            j = (j + 1) & mask
            slot = table[j]
            if slot == _EMPTY:
                break
            home = slot & mask
            # slot may move to the hole at i unless its home lies cyclically in (i, j]
            if (j > i and (home <= i or home > j)) or (j < i and home <= i and home > j):
                table[i] = slot
                i = j
        table[i] = _EMPTY
