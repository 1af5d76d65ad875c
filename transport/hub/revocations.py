"""Revocations held at the hub, durably: a revoked task never reaches a worker.

How it works
------------
``REVOKE`` (``AsyncResult.revoke()``, ``app.control.revoke(ids)``) adds the ids to the hub's
revoked set, written to the store in the loop turn's commit (one metadata row, ``revoked``, a
msgpack map of id -> time revoked), so it survives a hub restart (:meth:`_load_revoked`).
Then, for each id:

* a message queued or delayed at the hub is removed at once and ends REVOKED (a stored result
  with :class:`~celeriac.exceptions.TaskRevokedError`, pushed to waiters); no worker ever sees
  it, so ``task_revoked`` is sent by the process that revoked it: ``app.control.revoke`` asks
  ``hub_revoked`` which of its ids were removed here (with their task names) and sends the
  signal for those before it returns;
* a message published *later* under that id (a chain step, a retried publish, a client that
  sent it after revoking) is confirmed and ends REVOKED on arrival, never queued; so workers
  that connect later need no revoke list: they never see the message;
* a message a worker already holds is the worker's to end: the hub tells it (see
  :mod:`.canvas`), and ends the message REVOKED itself if that worker is lost or gives it back.

``STAT`` answers REVOKED for a revoked id with no result yet. Celery keeps revokes in each
worker's memory (lost on restart unless ``--statedb``) and cannot remove queued messages from
the broker; the ids here live as long as the hub's store, up to :data:`MAX_REVOKED` (oldest
forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

import msgpack

from celeriac import states
from celeriac._log import get_logger

from .. import protocol as p
from .chords import Chords
from .model import Peer

_log = get_logger("celeriac.hub")

#: How many revoked ids the hub remembers (Celery's worker keeps 50,000).
MAX_REVOKED: Final = 50_000
#: How many tasks removed by a revoke the hub keeps for its revoker's ``hub_revoked`` question
#: (memory only: a revoker that does not ask, or asks after a hub restart, gets no report).
MAX_REMOVED: Final = 10_000
_META: Final = "revoked"


class Revocations(Chords):
    """The revoked set: removes queued messages, refuses later ones, survives restarts."""

    def _revoked(self) -> dict[str, float]:
        revoked: dict[str, float] | None = self.__dict__.get("_revoked_ids")
        if revoked is None:
            revoked = self.__dict__["_revoked_ids"] = {}
        return revoked

    def _load_revoked(self) -> int:
        """Read the revoked ids from the store (after a restart); how many."""
        raw = self.store.get_meta(_META)
        loaded = msgpack.unpackb(raw, raw=False) if raw else {}
        self._revoked().update({str(k): float(v) for k, v in dict(loaded).items()})
        return len(self._revoked())

    def _is_revoked(self, mid: str) -> bool:
        return mid in self._revoked()

    def _on_revoke(self, peer: Peer | None, identity: bytes, msg: p.Revoke) -> None:
        revoked, now = self._revoked(), self.clock.time()
        for mid in msg.ids:
            revoked[mid] = now
            self._revoke_queued(mid)
        while len(revoked) > MAX_REVOKED:
            del revoked[next(iter(revoked))]
        self.store.set_meta(_META, msgpack.packb(revoked))
        self.counters["revoked"] = self.counters.get("revoked", 0) + len(msg.ids)
        _log.info("tasks_revoked", count=len(msg.ids), terminate=msg.terminate)

    def _revoke_queued(self, mid: str) -> None:
        held = self._messages.get(mid)
        if held is not None and held.holder is None:
            removed = self._removed()
            removed[mid] = {"id": mid, "name": held.task.task, "queue": held.queue}
            while len(removed) > MAX_REMOVED:
                removed.popitem(last=False)
            self._finish_by_hub(held, states.REVOKED, "TaskRevokedError", "revoked")

    def _removed(self) -> OrderedDict[str, dict[str, Any]]:
        removed: OrderedDict[str, dict[str, Any]] | None = self.__dict__.get("_removed_ids")
        if removed is None:
            removed = self.__dict__["_removed_ids"] = OrderedDict()
        return removed

    def _take_removed(self, ids: list[str]) -> list[dict[str, Any]]:
        """The tasks among ``ids`` that a revoke removed here before any worker held them
        (``hub_revoked``: the revoking client sends ``task_revoked`` for them), each once."""
        removed = self._removed()
        return [removed.pop(mid) for mid in ids if mid in removed]

    def _refuse_revoked(self, task: p.TaskMessage) -> bool:
        """True if ``task`` is revoked: it ends REVOKED here instead of being queued."""
        if task.id not in self._revoked():
            return False
        self._remember_done(task.id)
        self._store_result(self._hub_result(task.id, states.REVOKED, "TaskRevokedError", "revoked"))
        return True
