"""Chords counted at the hub, durably: the body runs once, when the last header task ends.

How it works
------------
``chord(header)(body)`` publishes, on one connection and in this order, an *unlock* message
(the built-in task ``celeriac.chord_unlock``, its id is the chord id, ``chord_size`` = the
number of header tasks) and the header tasks, each with ``chord`` = that id.

* The unlock message is stored like any message, but :meth:`Chords._chord_holds` keeps it out
  of its ready queue until the chord's counter reaches ``chord_size``; a hub restart reloads
  it from the store and holds it again.
* A header task counts when it *ends*: acknowledged by a worker's ``DONE`` (whatever its
  state) or ended by the hub (expired, rejected). The count is kept in the store's metadata
  (``chord:<id>``) and written in the same transaction (the loop turn's group commit) that
  removes the header message: after a crash, a header task is either still stored (it will
  run and count) or counted, never both, never neither. A redelivered header task is counted
  once, because only the first acknowledgement finds its message.
* When the count reaches the size, the unlock message becomes ready and a worker runs it: it
  reads the header results (stored at the hub) in header order and publishes the body with
  their values, with the body's frozen id (a second run of the unlock re-publishes that id,
  which the hub drops as a duplicate); if a header task failed, the body ends FAILURE with a
  :class:`~celeriac.exceptions.ChordError` naming it and the body's errbacks are called.
  When the unlock itself ends, its counter is deleted in the same transaction.

Celery counts chords in the result backend from the workers (a Redis counter, or a
``chord_unlock`` task polling every second), where a worker killed between storing a result
and counting it leaves a chord that never fires.
"""

from __future__ import annotations

import msgpack

from celeriac._log import get_logger

from .model import Msg
from .results import Results

_log = get_logger("celeriac.hub")

_META = "chord:"


class Chords(Results):
    """Chord counters and the unlock messages held until their counter is full."""

    def _make_ready(self, msg: Msg, *, front: bool = False) -> None:
        raise NotImplementedError  # Queues

    def _held_chords(self) -> dict[str, Msg]:
        held: dict[str, Msg] | None = self.__dict__.get("_chord_held")
        if held is None:
            held = self.__dict__["_chord_held"] = {}
        return held

    def _chord_count(self, chord_id: str) -> int:
        raw = self.store.get_meta(_META + chord_id)
        return int(msgpack.unpackb(raw)) if raw else 0

    def _chord_holds(self, msg: Msg) -> bool:
        """True if ``msg`` is a chord's unlock whose header has not ended yet: held here."""
        size = msg.task.chord_size
        if size is None or self._chord_count(msg.id) >= size:
            return False
        self._held_chords()[msg.id] = msg
        return True

    def _chord_member_ended(self, msg: Msg) -> None:
        """A header task ended (acknowledged, or ended by the hub): count it, maybe unlock.
        An unlock that ended takes its counter with it (nothing is left to expire)."""
        if msg.task.chord_size is not None and not msg.copy:
            self.store.delete_meta(_META + msg.id)
        chord_id = msg.task.chord
        if chord_id is None or msg.copy or msg.task.dead_letter is not None:
            return  # a dead letter was counted when it was set aside
        count = self._chord_count(chord_id) + 1
        self.store.set_meta(_META + chord_id, msgpack.packb(count))
        unlock = self._held_chords().get(chord_id)
        size = unlock.task.chord_size if unlock is not None else None
        if unlock is not None and size is not None and count >= size:
            del self._held_chords()[chord_id]
            _log.info("chord_unlocked", chord=chord_id, size=size)
            self._make_ready(unlock)
