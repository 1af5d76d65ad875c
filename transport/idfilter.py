"""A Bloom filter of ids: "certainly not there" without asking the database.

How it works
------------
``m`` bits (a ``bytearray``) and ``k`` positions per id, taken from one BLAKE2b digest of the
id. :meth:`IdFilter.add` sets the id's bits; :meth:`IdFilter.might_contain` is False only if
one of them is clear, so a False is certain (the id was never added) and a True may be wrong
(about 2% of the time at one id per 8 bits). Nothing is ever removed: an id whose row was
deleted stays "maybe", which costs a query, never a wrong answer.

The PostgreSQL store fills one with the ids of the stored results at start and with each
result it writes, so a publish (which must know whether its id already has a result) asks the
database only about the few ids the filter cannot rule out.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Final

__all__ = ["IdFilter"]

#: Bits by default: 8 MiBit (1 MiB of RAM), about 2% false positives at a million ids.
DEFAULT_BITS: Final = 1 << 23
_HASHES: Final = 3


class IdFilter:
    """A fixed-size Bloom filter of strings (no false negatives)."""

    __slots__ = ("_bits", "_mask", "count")

    def __init__(self, bits: int = DEFAULT_BITS) -> None:
        if bits < 8 or bits & (bits - 1):
            raise ValueError(f"bits must be a power of two >= 8, not {bits}")
        self._bits = bytearray(bits // 8)
        self._mask = bits - 1
        #: Ids added (with repeats): how full the filter is.
        self.count = 0

    def _positions(self, key: str) -> list[int]:
        digest = blake2b(key.encode(), digest_size=8 * _HASHES).digest()
        mask = self._mask
        return [int.from_bytes(digest[i * 8 : i * 8 + 8], "little") & mask for i in range(_HASHES)]

    def add(self, key: str) -> None:
        """Remember ``key``."""
        bits = self._bits
        for pos in self._positions(key):
            bits[pos >> 3] |= 1 << (pos & 7)
        self.count += 1

    def might_contain(self, key: str) -> bool:
        """False: ``key`` was never added. True: it may have been."""
        bits = self._bits
        return all(bits[pos >> 3] & (1 << (pos & 7)) for pos in self._positions(key))
