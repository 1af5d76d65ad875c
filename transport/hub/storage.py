"""Disk trouble: what the hub does when its store cannot write (disk full, read-only, I/O error).

How it works
------------
SQLite fails at the commit (or, for a big transaction, at a write): the transaction is rolled
back, so the writes of that loop turn are not on disk. The server then calls
:meth:`StorageTrouble.commit_failed` before sending anything:

* every publish of the turn that was to be confirmed is refused instead (``NACK`` with
  ``hub storage full: ...``), and forgotten by the hub (any delivery of it in the same turn is
  not sent): a publisher never gets a ``CONF`` for a task that is not on disk;
* from then on, publishes are refused at once with the same reason, before anything is
  stored, while everything that needs no new space goes on: deliveries of what is queued,
  acknowledgements, results, ``WAIT``/``STAT``;
* every :data:`PROBE_INTERVAL` seconds the server tries a small write (:meth:`probe`); when a
  commit succeeds again, publishes are accepted again (``hub_storage_recovered``).

An acknowledgement or a result written in a failed turn is lost from disk only: the hub
delivered or pushed it already; after a restart such a task may run again (at-least-once).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from celeriac._log import get_logger

from .. import protocol as p
from ..store import StoreUnavailable
from .base import HubBase

__all__ = ["PROBE_INTERVAL", "StorageTrouble", "storage_reason"]

_log = get_logger("celeriac.hub")

#: Seconds between two attempts to write while the store is failing.
PROBE_INTERVAL: Final = 1.0
_PROBE_KEY: Final = "storage_probe"


def storage_reason(exc: BaseException) -> str:
    """The refusal publishers read: ``hub storage full: ...`` for a full disk."""
    text = str(exc)
    if isinstance(exc, StoreUnavailable):
        return f"hub store unavailable: {text}"
    if "full" in text.lower():
        return f"hub storage full: {text} (free disk space in the hub's data directory)"
    return f"hub storage unavailable: {text}"


class StorageTrouble(HubBase):
    """The hub's side of a failing store: refusing publishes until writes work again."""

    _next_probe: float = 0.0
    _probing: bool = False

    def commit_failed(self, exc: BaseException) -> None:
        """The turn's commit failed (already rolled back): unconfirm what it would confirm."""
        reason = storage_reason(exc)
        self._flush_confirms()  # the turn's confirms, into the outbox, to be turned into NACKs
        for identity, held in self.confirm_hold.failed().items():  # and those it would hold
            for part in p.id_chunks(held):
                self._send(identity, p.Confirm(part))
        if self.storage_error is None:
            _log.error("hub_storage_failed", reason=reason)
        self.storage_error = reason
        self._probing = False
        self._next_probe = self.clock.monotonic() + PROBE_INTERVAL
        self.counters["storage_errors"] = self.counters.get("storage_errors", 0) + 1
        refused: dict[bytes, list[str]] = {}
        kept: list[list[bytes]] = []
        for frames in self.outbox:
            if frames[2:3] == [b"CONF"]:
                ids = p.decode(frames[1:]).ids  # type: ignore[union-attr]
                refused.setdefault(frames[0], []).extend(ids)
            else:
                kept.append(frames)
        lost = {mid for ids in refused.values() for mid in ids}
        self.outbox[:] = [f for f in kept if not _delivers(f, lost)]
        for mid in lost:
            self._forget_unstored(mid)
        for identity, ids in refused.items():
            refusals = [p.Refusal(i, reason[: p.MAX_TEXT]) for i in ids]
            for chunk in p.id_chunks(refusals, lambda r: len(r.id) + len(r.reason)):
                self._send(identity, p.Nack(chunk))

    def _forget_unstored(self, mid: str) -> None:
        for qid in [k for k in self._messages if k == mid or k.startswith(f"{mid}:")]:
            msg = self._messages.pop(qid)
            if msg.holder is not None:
                holder = self._peers.get(msg.holder)
                if holder is not None:
                    holder.inflight.discard(qid)
                    holder.credit += 1
        self._waiters.pop(mid, None)

    def probe_due(self) -> bool:
        """Whether the server should try a write now."""
        return self.storage_error is not None and self.clock.monotonic() >= self._next_probe

    def probe(self) -> None:
        """Write a small value; the server commits it and calls :meth:`storage_works`."""
        self._next_probe = self.clock.monotonic() + PROBE_INTERVAL
        self._probing = True
        self.store.set_meta(_PROBE_KEY, repr(self.clock.time()).encode())

    def storage_works(self) -> None:
        """A commit succeeded: if it carried a probe, accept publishes again."""
        probing, self._probing = self._probing, False
        if probing and self.storage_error is not None:
            _log.info("hub_storage_recovered", was=self.storage_error)
            self.storage_error = None


def _delivers(frames: list[bytes], lost: set[str]) -> bool:
    """Whether ``frames`` (to a peer) delivers one of the ``lost`` messages."""
    if frames[2:3] != [b"TASK"] or not lost:
        return False
    try:
        message = p.decode(frames[1:])
    except Exception:
        return False
    return any(d.task.id in lost for d in message.deliveries)  # type: ignore[union-attr]


#: The errors that mean "the store cannot write", not a bug of the hub's.
#: (OperationalError: full, read-only, I/O error; a ProgrammingError stays a bug.
#: StoreUnavailable: a database server gone away, see ``store_postgres``.)
STORAGE_ERRORS: Final = (sqlite3.OperationalError, StoreUnavailable)
