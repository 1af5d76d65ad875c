"""Which task ids may have a stored result, kept in memory: a publish's duplicate check
without a read of the ``results`` table in the common case (a new id).

Why
---
The hub drops a publish whose id already has a result (a client resending after a lost
confirmation). Asked of SQLite, that is a ``SELECT`` per publish message: on the idle round
trip (one task a turn) a read of its own, which also runs the turn's queued writes early
(:mod:`.writebatch`). Nearly every publish is a new uuid4 with no result; this filter says so
from memory, and only an id it cannot rule out is looked up.

How it works
------------
One bit per slot, ``2**25`` slots (4 MiB, zeroed pages untouched until set): an id's slot is
its string hash. :meth:`ResultIds.add` sets the slot of every result the store writes; an id
whose slot is clear has no result (a bit is never cleared: a result purged or rolled back
leaves it set, which only costs a lookup). The filter is read from the table once, at the
first check (so a hub restarted over a file with results knows them); a table too large to
read quickly (more than :data:`SCAN_LIMIT` rows), or a filter that has taken that many ids
since it was read, answers "maybe" for every id: the store then looks each up, as before.
The store that keeps this must be the only writer of its results (the SQLite file is the
hub's alone); a shared database has no such filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["SCAN_LIMIT", "ResultIds"]

#: The most ids the filter holds before it answers "maybe" for all (at that many, a new id's
#: slot is set with a chance of about 6%: it then costs the lookup it would have anyway).
SCAN_LIMIT: Final = 2_000_000

_SLOTS_LOG2: Final = 25


class ResultIds:
    """A one-hash bit filter of the ids with a result: no false "absent", few false "maybe"."""

    __slots__ = ("_bits", "_count", "_mask")

    def __init__(self) -> None:
        self._mask = (1 << _SLOTS_LOG2) - 1
        self._bits = bytearray(1 << (_SLOTS_LOG2 - 3))
        self._count = 0

    @property
    def full(self) -> bool:
        """Past :data:`SCAN_LIMIT` ids: every id may have a result."""
        return self._count > SCAN_LIMIT

    def give_up(self) -> None:
        """Answer "maybe" for every id from now on (a table too large to read)."""
        self._count = SCAN_LIMIT + 1

    def fill(self, ids: Iterable[object]) -> None:
        """Take every id of the table (stopping once full: the rest would change nothing)."""
        for mid in ids:
            self.add(mid)
            if self._count > SCAN_LIMIT:
                return

    def add(self, mid: object) -> bool:
        """``mid`` has a result now; whether it may have had one before (False: surely
        not, so its result needs no replacing: one hash for both answers)."""
        h = hash(mid) & self._mask
        bits = self._bits
        before = bits[h >> 3]
        bit = 1 << (h & 7)
        self._count += 1
        if before & bit:
            return True
        bits[h >> 3] = before | bit
        return self._count > SCAN_LIMIT + 1

    def maybe(self, ids: list[str]) -> list[str]:
        """The ids of ``ids`` that may have a result (the others surely have none)."""
        if self._count > SCAN_LIMIT:
            return ids
        if not self._count:  # no result stored yet (tasks that ignore results): none has one
            return []
        bits, mask = self._bits, self._mask
        out = []
        for mid in ids:
            h = hash(mid) & mask
            if bits[h >> 3] >> (h & 7) & 1:
                out.append(mid)
        return out
