"""A shared hub's keyed actors: each key is served through one hub of the schema at a time.

How it works
------------
A key's calls must run one at a time, in order, so its messages are served by one hub (held
in its RAM as with one hub, see :mod:`.actors`), and the hub serving a key holds a row in
``locks`` named ``~actor:<the key's queue>`` with its hub id as owner:

* the first message of a key this hub does not serve takes the row (free, expired, or
  already this hub's: one conditional upsert, two hubs asking at once take turns); when
  another hub holds it, the publish is refused (``NACK``) naming that hub: publish the key
  through it (clients that list several hubs in ``broker_url`` resend there on their own
  only on failover, so keep each key's publishers on one hub, or keyed actors on a hub that
  is not shared);
* taking a key over (its hub died or let it go) also takes the key's rows left in the table
  by the hub that served it before, in their order, ahead of the new message;
* every beat the hub extends the rows of the keys it still has messages or a placement for
  (``hub_shared_lease_ttl``), and lets the others expire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celeriac._log import get_logger

from .. import protocol as p
from .shared_bindings import SharedBindings

if TYPE_CHECKING:
    from ..store_pg_shared import Claimed, SharedPostgresStore

__all__ = ["KEY_LOCK_PREFIX", "SharedActors"]

_log = get_logger("celeriac.hub")

#: The ``locks`` row of a key's serving hub: this prefix and the key's queue.
KEY_LOCK_PREFIX = "~actor:"
#: A key's rows taken over at once from the hub that served it before.
TAKEOVER_MAX = 100_000


class SharedActors(SharedBindings):
    """Keys served through one hub at a time; see the module docstring."""

    store: SharedPostgresStore

    def _take(self, claimed: Claimed, *, ready: bool = True) -> None:
        raise NotImplementedError  # SharedHubState

    def _route(self, task: p.TaskMessage) -> list[str]:
        queues = super()._route(task)
        if queues == [task.queue] and p.is_keyed_queue(task.queue) and task.exchange is None:
            return queues if self._serve_key(task.queue) else []
        return queues

    def _serve_key(self, queue: str) -> bool:
        """Whether this hub serves ``queue``'s key (taking it if no hub does)."""
        if queue in self._keys:
            return True  # its row is extended every beat
        if not self.store.lock(KEY_LOCK_PREFIX + queue, self.hub_id, self.store.lease_ttl):
            return False
        for claimed in self.store.claim({queue: TAKEOVER_MAX}):
            if claimed.row.id in self._messages:
                continue  # published through this hub this turn: queued already
            self._take(claimed)
        return True

    def _unroutable_reason(self, task: p.TaskMessage) -> str:
        if not (p.is_keyed_queue(task.queue) and task.exchange is None):
            return super()._unroutable_reason(task)
        owner = self.store.lock_owner(KEY_LOCK_PREFIX + task.queue)
        return (
            f"keyed actor {task.queue!r} is served through hub {owner!r} of this schema, not "
            f"this one ({self.hub_id!r}): publish each key through one hub, or keep keyed "
            "actors on a hub that is not shared"
        )

    def _extend_keys(self) -> None:
        """The beat: keep the rows of the keys this hub still serves."""
        names = [KEY_LOCK_PREFIX + q for q in self._keys]
        if not names:
            return
        kept = self.store.locks_extend(names, self.hub_id, self.store.lease_ttl)
        lost = len(names) - len(kept)
        if lost:  # this hub was stalled longer than the lease: another may serve them now
            _log.warning("actor_keys_lost", count=lost, hub=self.hub_id)
