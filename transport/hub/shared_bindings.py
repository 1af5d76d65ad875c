"""A shared hub's exchanges, queues and bindings: one table for every hub of the schema.

How it works
------------
The exchange table is one row, ``meta`` key ``bindings`` (the snapshot a hub on its own keeps
there too), that only grows: a declaration adds to it, nothing takes away. Each hub routes
with a copy of it in RAM (:attr:`HubState.table`):

* a declaration that adds nothing to the copy (every peer's ``HELLO`` declares again) is
  answered from RAM, without a write or a lock;
* one that adds something reads the row ``FOR UPDATE`` (two hubs adding at once take turns,
  neither loses the other's), applies the declaration to it (a conflict with what any hub
  declared is refused, saying why), writes it back and, at the commit, tells the other hubs
  (``NOTIFY b:``), which read it again;
* a publish that nothing routes is tried again once against the row, read afresh (a
  notification not heard yet, or lost with the ``LISTEN`` connection), before it is refused.

So a client of hub B may publish to a queue only a worker of hub A declared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgpack

from celeriac._log import get_logger

from .. import protocol as p
from ..routing import ExchangeTable
from .model import BINDINGS_META_KEY, ReadyQueue
from .state import HubState

if TYPE_CHECKING:
    from ..store_pg_shared import SharedPostgresStore

__all__ = ["SharedBindings"]

_log = get_logger("celeriac.hub")


class SharedBindings(HubState):
    """Declarations read from and added to the schema's one exchange table; see the module
    docstring."""

    store: SharedPostgresStore
    #: The row was read afresh this turn (an unroutable publish reads it at most once a turn).
    _bindings_fresh: bool = False

    def _declare(self, identity: bytes, declared: p.Declare) -> bool:
        if self._adds_nothing(declared):
            return True
        empty = msgpack.packb(ExchangeTable().snapshot())
        self._use_bindings(self.store.meta_locked(BINDINGS_META_KEY, empty))
        before = self.table.snapshot()
        if not super()._declare(identity, declared):
            return False
        if self.table.snapshot() != before:
            self.store.bindings_changed()
        return True

    def _adds_nothing(self, declared: p.Declare) -> bool:
        """Whether every exchange, queue and binding of ``declared`` is in this hub's copy as
        declared (anything else, a conflict too: False, the full path says why)."""
        table = self.table
        types = table.exchanges()
        if any(types.get(x.name) != x.type for x in declared.exchanges):
            return False
        queues = table.queues()
        if any(
            q.name not in queues or table.max_priority(q.name) != q.max_priority
            for q in declared.queues
        ):
            return False
        bound = set(table.bindings())
        return all(
            (b.exchange, b.routing_key, q.name) in bound
            for q in declared.queues
            for b in q.bindings
        )

    def _route(self, task: p.TaskMessage) -> list[str]:
        queues = super()._route(task)
        if not queues and not self._bindings_fresh:
            self.reload_bindings()
            queues = super()._route(task)
        return queues

    def reload_bindings(self) -> None:
        """Read the schema's exchange table again (another hub added to it)."""
        self._bindings_fresh = True
        raw = self.store.get_meta(BINDINGS_META_KEY)
        if raw is not None:
            self._use_bindings(raw)

    def _use_bindings(self, raw: bytes) -> None:
        """Route with the stored table ``raw`` (kept as it was if it cannot be read)."""
        try:
            table = ExchangeTable.from_snapshot(msgpack.unpackb(raw, raw=False))
        except Exception as exc:  # damaged, or from another version: the copy in RAM stays
            _log.error("bindings_not_read", reason=f"{type(exc).__name__}: {exc}"[:300])
            return
        self.table = table
        for name, rq in list(self._ready.items()):
            wanted = table.max_priority(name)
            if wanted != rq.max_priority and not rq:
                self._ready[name] = ReadyQueue(name, wanted)
