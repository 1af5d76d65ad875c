"""A publisher's ``CONF`` held a moment, for the ``RES`` that confirms it as well (issue 18).

A client that publishes a task and waits for its result (``delay().get()``) was woken twice per
call: by the ``CONF`` of its publish, sent right after the commit, and by the ``RES``. On a
2-core machine the first wake-up (the client's ZeroMQ I/O thread and its caller) ran while the
worker ran the task, on the CPUs the task needed (``benchmarks/latency_trace.py``: with no
``CONF`` the client woke 3.1 times per call instead of 5.0, ~50 µs of its CPU less).

A client that says so in its ``HELLO`` (``results_confirm``) takes a ``RES`` for a publish it
holds unconfirmed as its confirmation. That is sound: the hub sends a task's ``RES`` only after
the publish was committed (a ``TASK`` leaves only after its publish's commit, a ``RES`` after
that task's ``DONE``; a result already stored is pushed in the publish's own turn, which
commits before it sends). For such a peer, the ids of a turn's ``CONF`` whose result it waits
for are kept here instead (:meth:`ConfirmHold.defer`), and only once the turn's commit
succeeded (:meth:`ConfirmHold.committed`; a failed commit gives them back to be refused:
:meth:`ConfirmHold.failed`). A ``RES`` to that peer for one of them drops it
(:meth:`ConfirmHold.answered`); what is left goes out as a ``CONF`` in the first turn that sends
that peer anything else, or :data:`CONFIRM_HOLD` after it was committed, or when the hub stops
(:meth:`ConfirmHold.due`). A confirmation is only ever later, never earlier. What waits for
confirmations (``flush()``, a publisher at its cap, beat's saved state) waits at most
:data:`CONFIRM_HOLD` longer for a task still running; a crash of the hub loses held ids as it
loses a ``CONF`` in flight: the client publishes them again and the hub knows them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

__all__ = ["CONFIRM_HOLD", "ConfirmHold"]

#: Seconds at most a committed publish waits for its ``RES`` before its ``CONF`` leaves.
CONFIRM_HOLD: Final = 0.002


class ConfirmHold:
    """The ids held back from ``CONF``, by peer identity."""

    __slots__ = ("_answered", "_held", "_pending")

    def __init__(self) -> None:
        #: This turn's ids, not committed yet.
        self._pending: dict[bytes, list[str]] = {}
        #: Committed ids: peer -> (monotonic time held, ids in publish order).
        self._held: dict[bytes, tuple[float, dict[str, None]]] = {}
        #: Ids of this turn's pending answered by a RES in the same turn.
        self._answered: set[tuple[bytes, str]] = set()

    def __bool__(self) -> bool:
        return bool(self._held or self._pending)

    def defer(self, identity: bytes, ids: list[str]) -> None:
        """Hold this turn's ``ids`` for ``identity`` (until :meth:`committed`)."""
        self._pending.setdefault(identity, []).extend(ids)

    def committed(self, now: float) -> None:
        """The turn's commit succeeded: its pending ids are held from ``now`` (those a ``RES``
        of the same turn answered are dropped)."""
        answered = self._answered
        for identity, ids in self._pending.items():
            keep = [mid for mid in ids if (identity, mid) not in answered]
            if not keep:
                continue
            entry = self._held.get(identity)
            if entry is None:
                self._held[identity] = (now, dict.fromkeys(keep))
            else:
                entry[1].update(dict.fromkeys(keep))
        self._pending.clear()
        answered.clear()

    def failed(self) -> dict[bytes, list[str]]:
        """The turn's commit failed: its pending ids, given back (to be refused)."""
        pending, self._pending = self._pending, {}
        self._answered.clear()
        return pending

    def answered(self, identity: bytes, mid: str) -> None:
        """A ``RES`` for ``mid`` goes to ``identity``: it confirms the publish."""
        entry = self._held.get(identity)
        if entry is not None and mid in entry[1]:
            del entry[1][mid]
            if not entry[1]:
                del self._held[identity]
        elif identity in self._pending:
            self._answered.add((identity, mid))

    def due(
        self, now: float, busy: Collection[bytes] | None = None
    ) -> list[tuple[bytes, list[str]]]:
        """The held ids that go out now as a ``CONF``: those of a peer in ``busy`` (sent
        something this turn), or held :data:`CONFIRM_HOLD` by ``now``; ``busy=None``: all."""
        out: list[tuple[bytes, list[str]]] = []
        for identity, (since, ids) in list(self._held.items()):
            if busy is None or identity in busy or now >= since + CONFIRM_HOLD:
                del self._held[identity]
                out.append((identity, list(ids)))
        return out

    def deadline(self) -> float | None:
        """Monotonic time the oldest held id is due; None if none is held."""
        if not self._held:
            return None
        return min(since for since, _ in self._held.values()) + CONFIRM_HOLD
