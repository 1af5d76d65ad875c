"""The hub's part of the canvas's loose ends (issue 8): revokes that reach the worker holding
the task, expired chain steps that still call their errbacks, chords whose header task ended
anywhere but in a worker's ``DONE``.

How it works
------------
Revoke of a task a worker holds
    :class:`~.revocations.Revocations` removes queued and delayed messages. A message a worker
    already holds (prefetched, waiting for its type's rate limit, or running) is the worker's
    to end: the hub sends that worker ``CANVAS_REVOKED`` (:class:`~celeriac._protocol.RevokeHeld`)
    with the ids it holds, ``terminate`` and the signal's name. The worker ends a delivery that
    has not started REVOKED without running it, stops a running one when ``terminate`` is set
    (see :mod:`celeriac.actors.terminate`), and sends ``task_revoked`` either way. If that worker
    is lost or hands the message back instead, :meth:`CanvasRevokes._requeue_revoked` ends it
    REVOKED here rather than delivering it again: a revoked task is never run after its revoke.

Expired messages with errbacks or a chain
    An expired message is normally ended REVOKED by the hub (``expired``) without a worker. A
    message whose body (JSON or msgpack, read only on this rare path) carries errbacks or the
    rest of a chain is delivered instead: the worker sees it has expired, runs nothing, ends it
    REVOKED, sends ``task_revoked(expired=True)``, calls the errbacks and ends the later chain
    steps REVOKED too, so a chain never waits for ever on a step that will never run. A body the
    hub cannot read (pickle, yaml, compressed) is ended at the hub as before.

Chord header tasks
    A header task refused because it was revoked before it was published, and one moved to the
    dead-letter queue (its workers kept being lost), count towards the chord like one that
    ended in a worker: the chord then fires its error path (the body ends FAILURE with a
    ``ChordError`` and its errbacks are called) instead of never firing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from celeriac import states
from celeriac._log import get_logger
from celeriac._serialization import loads

from .. import protocol as p
from .model import Msg, Peer
from .revocations import Revocations

_log = get_logger("celeriac.hub")

#: The bodies the hub may read to look for errbacks (never pickle: the hub runs no user code).
_READABLE: Final = frozenset({"application/json", "application/x-msgpack"})
#: Bodies larger than this are not read (the message is ended at the hub as before).
_MAX_PEEK: Final = 1024 * 1024


def has_canvas_failure_path(task: p.TaskMessage) -> bool:
    """True if ``task``'s body carries errbacks or later chain steps (a JSON/msgpack body)."""
    if task.content_type not in _READABLE or len(task.body) > _MAX_PEEK:
        return False
    try:
        body = loads(task.body, task.content_type, _READABLE)
    except Exception:  # an unreadable body is the worker's business, not the hub's
        return False
    if not isinstance(body, list | tuple) or len(body) < 3 or not isinstance(body[2], Mapping):
        return False
    return bool(body[2].get("errbacks") or body[2].get("chain"))


class CanvasRevokes(Revocations):
    """Revokes sent on to holders, expired canvas steps handed to a worker, chords counted."""

    def _on_revoke(self, peer: Peer | None, identity: bytes, msg: p.Revoke) -> None:
        super()._on_revoke(peer, identity, msg)
        by_holder: dict[bytes, list[str]] = {}
        for mid in msg.ids:
            held = self._messages.get(mid)
            if held is not None and held.holder is not None:
                by_holder.setdefault(held.holder, []).append(mid)
        for holder, ids in by_holder.items():
            self._send(holder, p.RevokeHeld(tuple(ids), msg.terminate, msg.signal))
            _log.info("revoke_sent_to_worker", ids=ids, terminate=msg.terminate)

    def _requeue_revoked(self, msg: Msg) -> bool:
        """End ``msg`` REVOKED instead of requeueing it, if it was revoked; True if so."""
        if not self._is_revoked(msg.id):
            return False
        self._finish_by_hub(msg, states.REVOKED, "TaskRevokedError", "revoked")
        return True

    def _expires_at_worker(self, msg: Msg) -> bool:
        """True if an expired ``msg`` goes to a worker anyway (its errbacks/chain must run)."""
        return not msg.copy and has_canvas_failure_path(msg.task)

    def _refuse_revoked(self, task: p.TaskMessage) -> bool:
        if not super()._refuse_revoked(task):
            return False
        if task.chord is not None:  # it will never run: it still counts for its chord
            self._chord_member_ended(Msg(task.id, task.queue, 0, None, None, 0, task))
        return True
