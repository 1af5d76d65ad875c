"""The ids of the tasks done most recently, kept compactly to drop duplicate publishes.

How it works
------------
The hub remembers at least the last :data:`~.model.RECENT_DONE_LIMIT` ids it saw done, so that
a publish sent again (a client resending after a lost confirmation) is dropped without a store
lookup. Kept as strings in a dict, 100,000 ids cost about 25 MiB of small objects, each
allocated among the short-lived ones of its turn: after a drain they pin Python's memory
arenas, and the hub's RSS never comes back. Here an id is kept as its 64-bit hash only, in two
open-addressing tables (linear probing) allocated once, two generations: ids are added to the
newer; when it holds ``capacity`` ids, the older is wiped and the two swap roles. So the last
``capacity`` distinct ids are always known (up to twice as many are), and forgetting costs one
wipe per ``capacity`` ids, not a deletion per id (a ring and a deletion by backward shift, as
before, cost 1.4 µs per id added once full; this 0.3). About 4 MiB at 100,000 ids, whatever
the traffic, and no object per id.

A hash is not the id: two ids with the same 64-bit hash would make a new publish look like a
duplicate. With at most 200,000 ids kept, the chance for one publish is about 200,000 / 2**64
(1e-14), far below that of a lost message on any disk. Hashes are Python's string hashes, per
process, never stored.
"""

from __future__ import annotations

from array import array

__all__ = ["RecentIds"]

_EMPTY = 0  # a free slot in a table; an id hashing to 0 is kept as 1


class RecentIds:
    """At least the last ``capacity`` distinct ids added (at most twice that); the oldest are
    forgotten first."""

    __slots__ = ("_capacity", "_count", "_mask", "_new", "_old", "_old_count", "_size")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        size = 4
        while size < 2 * capacity:  # at most half full: probes stay short
            size *= 2
        self._size = size
        self._mask = size - 1
        self._new = array("q", bytes(8 * size))
        self._old = array("q", bytes(8 * size))
        self._count = 0  # ids in the newer table
        self._old_count = 0

    def __len__(self) -> int:
        """How many ids are known (the two generations may both hold one: counted twice)."""
        return self._count + self._old_count

    def __contains__(self, mid: object) -> bool:
        if not isinstance(mid, str):
            return False
        key = hash(mid) or 1  # the probes inlined: asked once per publish
        mask = self._mask
        table = self._new
        i = key & mask
        while True:
            slot = table[i]
            if slot == key:
                return True
            if slot == _EMPTY:
                break
            i = (i + 1) & mask
        if not self._old_count:
            return False
        table = self._old
        i = key & mask
        while True:
            slot = table[i]
            if slot == key:
                return True
            if slot == _EMPTY:
                return False
            i = (i + 1) & mask

    def add(self, mid: str) -> None:
        """Remember ``mid`` (in the newer generation, if it is not there already)."""
        key = hash(mid) or 1  # the probe inlined: called once per task done
        table, mask = self._new, self._mask
        i = key & mask
        while True:
            slot = table[i]
            if slot == key:
                return
            if slot == _EMPTY:
                break
            i = (i + 1) & mask
        if self._count == self._capacity:  # the newer is full: it becomes the older
            self._wipe_old()
            table = self._new
            i = key & mask  # an empty table: the home slot is free
        table[i] = key
        self._count += 1

    def _wipe_old(self) -> None:
        """Forget the older generation; the newer becomes the older, the wiped one the newer."""
        old = self._old
        old[:] = array("q", bytes(8 * self._size))
        self._old, self._new = self._new, old
        self._old_count, self._count = self._count, 0
