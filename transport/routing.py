"""Exchanges, bindings and topic matching for the hub: pure data, no sockets, no threads.

How it works
------------
The hub keeps one :class:`ExchangeTable`. Clients and workers send *declarations* (plain dicts,
see below); :meth:`ExchangeTable.apply_declarations` validates a whole batch first and applies it
only if every entry is sound, so a bad batch leaves the table unchanged. Each publish then calls
:meth:`ExchangeTable.route` once, which returns the names of the queues that get a copy:

* the default exchange ``""`` is direct and routes a key to the queue of that name, if declared
  (AMQP's default-exchange rule); it cannot be bound;
* a direct exchange is a dict lookup ``key -> queues``;
* a fanout exchange ignores the key and routes to every bound queue;
* a topic exchange walks a trie of binding words (see :class:`TopicTrie`) and caches the answer
  per routing key until its bindings change.

Results are sorted by queue name, each queue at most once: deterministic whatever the order in
which bindings arrived, and unchanged by a snapshot round trip. An unknown exchange, or a key no
binding matches, gives ``[]``; the hub turns that into an "unroutable" reply (or, when the
publisher asked for it, stores the message in :data:`DEAD_LETTER_QUEUE`).

Topic patterns are matched by :mod:`celeriac.transport.topics`; declarations, their wire form
and their errors are :mod:`celeriac.transport.declarations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from celeriac.exceptions import ProtocolError

from .declarations import (
    DEFAULT_EXCHANGE,
    EXCHANGE_TYPES,
    DeclarationConflictError,
    as_list,
    check_keys,
    check_max_priority,
    check_name,
    check_rules,
    parse_exchange,
    parse_queue,
)
from .topics import TopicTrie

__all__ = ["DEAD_LETTER_QUEUE", "ExchangeTable"]

#: Where the hub keeps messages no queue binds when the publisher asked for dead-lettering
#: (setting ``task_unroutable = "dead_letter"``) instead of an error.
DEAD_LETTER_QUEUE: Final = "celeriac.unroutable"

_SNAPSHOT_VERSION: Final = 1
_TOPIC_CACHE_SIZE: Final = 4096


# -- the table ---------------------------------------------------------------------------------


class ExchangeTable:
    """Exchanges, queues and bindings held by the hub; :meth:`route` runs once per publish.

    All mutators validate before changing anything. Conflicts raise
    :class:`DeclarationConflictError`; so do direct calls naming an unknown exchange or queue
    (a configuration error of whoever asked).
    """

    def __init__(self) -> None:
        self._types: dict[str, str] = {DEFAULT_EXCHANGE: "direct"}
        self._max_priority: dict[str, int | None] = {}
        # exchange -> routing key -> sorted queue names (direct exchanges)
        self._direct: dict[str, dict[str, list[str]]] = {}
        # exchange -> sorted queue names (fanout exchanges)
        self._fanout: dict[str, list[str]] = {}
        self._topic: dict[str, TopicTrie] = {}
        # per topic exchange: routing key -> answer, dropped whenever its bindings change
        self._topic_cache: dict[str, dict[str, list[str]]] = {}
        # every binding as (exchange, routing_key, queue), in the order first bound
        self._bindings: dict[tuple[str, str, str], None] = {}

    # -- declarations --------------------------------------------------------------------------

    def declare_exchange(self, name: str, type: str = "direct") -> None:
        """Declare an exchange; re-declaring with the same type is a no-op."""
        check_name(name, "exchange name", allow_empty=True)
        if type not in EXCHANGE_TYPES:
            raise ProtocolError(f"exchange type must be one of {sorted(EXCHANGE_TYPES)}")
        self._check_exchange_type(name, type)
        if name in self._types:
            return
        self._types[name] = type
        if type == "direct":
            self._direct[name] = {}
        elif type == "fanout":
            self._fanout[name] = []
        else:
            self._topic[name] = TopicTrie()
            self._topic_cache[name] = {}

    def declare_queue(self, name: str, max_priority: int | None = None) -> None:
        """Declare a queue; ``max_priority=None`` on an existing queue keeps its value."""
        check_name(name, "queue name", allow_empty=False)
        check_max_priority(max_priority, f"queue {name!r}")
        self._check_queue_priority(name, max_priority)
        if name not in self._max_priority or max_priority is not None:
            self._max_priority[name] = max_priority

    def bind(self, exchange: str, routing_key: str, queue: str) -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key`` (a pattern on topic exchanges)."""
        self._check_binding(exchange, routing_key, queue)
        if (exchange, routing_key, queue) in self._bindings:
            return
        self._bindings[exchange, routing_key, queue] = None
        kind = self._types[exchange]
        if kind == "direct":
            _insert_sorted(self._direct[exchange].setdefault(routing_key, []), queue)
        elif kind == "fanout":
            _insert_sorted(self._fanout[exchange], queue)
        else:
            self._topic[exchange].add(routing_key, queue)
            self._topic_cache[exchange].clear()

    def unbind(self, exchange: str, routing_key: str, queue: str) -> None:
        """Remove one binding; unknown bindings are ignored (unbinding is idempotent)."""
        binding = (exchange, routing_key, queue)
        if binding not in self._bindings:
            return
        del self._bindings[binding]
        kind = self._types[exchange]
        if kind == "direct":
            keyed = self._direct[exchange]
            keyed[routing_key].remove(queue)
            if not keyed[routing_key]:
                del keyed[routing_key]
        elif kind == "fanout":
            # a queue bound twice (with two keys) stays until its last binding goes
            if not any(b[0] == exchange and b[2] == queue for b in self._bindings):
                self._fanout[exchange].remove(queue)
        else:
            self._topic[exchange].remove(routing_key, queue)
            self._topic_cache[exchange].clear()

    def delete_queue(self, name: str) -> None:
        """Forget a queue and all its bindings (e.g. a node's broadcast queue when it leaves)."""
        for exchange, key, queue in list(self._bindings):
            if queue == name:
                self.unbind(exchange, key, queue)
        self._max_priority.pop(name, None)

    def apply_declarations(self, exchanges: Any, queues: Any) -> None:
        """Validate and apply a batch of wire declarations, all or nothing.

        Raises :class:`ProtocolError` for a bad shape and :class:`DeclarationConflictError` for a
        sound declaration that contradicts the table or the batch itself; never anything else.
        """
        parsed_x = [parse_exchange(d, i) for i, d in enumerate(as_list(exchanges, "exchanges"))]
        parsed_q = [parse_queue(d, i) for i, d in enumerate(as_list(queues, "queues"))]
        self.apply_parsed(parsed_x, parsed_q)

    def apply_parsed(
        self,
        exchanges: list[tuple[str, str]],
        queues: list[tuple[str, int | None, list[tuple[str, str]]]],
    ) -> None:
        """Apply declarations already in parsed form (``(name, type)`` and ``(name,
        max_priority, [(exchange, routing_key)])``, as the protocol decodes them), all or
        nothing; the naming rules are checked here (ProtocolError), conflicts as above."""
        check_rules(exchanges, queues)
        self._check_batch(exchanges, queues)
        for name, kind in exchanges:
            self.declare_exchange(name, kind)
        for qname, max_priority, bindings in queues:
            self.declare_queue(qname, max_priority)
            for exchange, key in bindings:
                self.bind(exchange, key, qname)

    # -- routing -------------------------------------------------------------------------------

    def route(self, exchange: str, routing_key: str) -> list[str]:
        """The queues a message published to ``exchange`` with ``routing_key`` goes to.

        Sorted, each queue once; ``[]`` for an unknown exchange or when nothing matches.
        """
        direct = self._direct.get(exchange)
        if direct is not None:
            return list(direct.get(routing_key, ()))
        if exchange == DEFAULT_EXCHANGE:
            return [routing_key] if routing_key in self._max_priority else []
        fanout = self._fanout.get(exchange)
        if fanout is not None:
            return list(fanout)
        trie = self._topic.get(exchange)
        if trie is None:
            return []
        return list(self._route_topic(exchange, trie, routing_key))

    def _route_topic(self, exchange: str, trie: TopicTrie, routing_key: str) -> list[str]:
        """Match on the trie, through a per-exchange cache of recent keys."""
        cache = self._topic_cache[exchange]
        hit = cache.get(routing_key)
        if hit is None:
            if len(cache) >= _TOPIC_CACHE_SIZE:
                cache.clear()  # crude but bounded: a peer cannot grow it without limit
            hit = cache[routing_key] = sorted(trie.match(routing_key))
        return hit

    # -- inspection and persistence ------------------------------------------------------------

    def queues(self) -> set[str]:
        """The names of all declared queues."""
        return set(self._max_priority)

    def exchanges(self) -> dict[str, str]:
        """Exchange name -> type, the default exchange ``""`` included."""
        return dict(self._types)

    def max_priority(self, queue: str) -> int | None:
        """The ``max_priority`` a queue was declared with (None: no priorities)."""
        return self._max_priority.get(queue)

    def bindings(self) -> list[tuple[str, str, str]]:
        """Every binding as ``(exchange, routing_key, queue)``, in the order first bound."""
        return list(self._bindings)

    def snapshot(self) -> dict[str, Any]:
        """The whole table as plain msgpack-able data, in the wire declaration form."""
        by_queue: dict[str, list[dict[str, str]]] = {q: [] for q in self._max_priority}
        for exchange, key, queue in self._bindings:
            by_queue[queue].append({"exchange": exchange, "routing_key": key})
        return {
            "version": _SNAPSHOT_VERSION,
            "exchanges": [
                {"name": n, "type": t} for n, t in self._types.items() if n != DEFAULT_EXCHANGE
            ],
            "queues": [
                {"name": q, "max_priority": self._max_priority[q], "bindings": b}
                for q, b in by_queue.items()
            ],
        }

    @classmethod
    def from_snapshot(cls, data: Any) -> ExchangeTable:
        """Rebuild a table from :meth:`snapshot` output; malformed data raises ProtocolError."""
        d = check_keys(data, frozenset({"version", "exchanges", "queues"}), "snapshot")
        if d["version"] != _SNAPSHOT_VERSION:
            raise ProtocolError(f"unknown exchange table snapshot version {d['version']!r}")
        table = cls()
        table.apply_declarations(d["exchanges"], d["queues"])
        return table

    # -- checks --------------------------------------------------------------------------------

    def _check_exchange_type(self, name: str, kind: str) -> None:
        known = self._types.get(name)
        if known is not None and known != kind:
            raise DeclarationConflictError(
                f"exchange {name!r} is already declared as {known}, not {kind}"
            )

    def _check_queue_priority(self, name: str, max_priority: int | None) -> None:
        known = self._max_priority.get(name)
        if known is not None and max_priority is not None and known != max_priority:
            raise DeclarationConflictError(
                f"queue {name!r} is already declared with max_priority={known}, not {max_priority}"
            )

    def _check_binding(self, exchange: str, routing_key: str, queue: str) -> None:
        check_name(routing_key, "routing key", allow_empty=True)
        if exchange == DEFAULT_EXCHANGE:
            raise DeclarationConflictError("the default exchange '' cannot be bound")
        if exchange not in self._types:
            raise DeclarationConflictError(f"cannot bind to unknown exchange {exchange!r}")
        if queue not in self._max_priority:
            raise DeclarationConflictError(f"cannot bind unknown queue {queue!r}")

    def _check_batch(
        self,
        exchanges: list[tuple[str, str]],
        queues: list[tuple[str, int | None, list[tuple[str, str]]]],
    ) -> None:
        """Find every conflict before anything changes, so a batch applies all or nothing."""
        types = dict(self._types)
        for name, kind in exchanges:
            if types.setdefault(name, kind) != kind:
                raise DeclarationConflictError(
                    f"exchange {name!r} is declared as {types[name]}, not {kind}"
                )
        priorities = dict(self._max_priority)
        for qname, max_priority, bindings in queues:
            known = priorities.get(qname)
            if known is not None and max_priority is not None and known != max_priority:
                raise DeclarationConflictError(
                    f"queue {qname!r} is declared with max_priority={known}, not {max_priority}"
                )
            if known is None:
                priorities[qname] = max_priority
            _check_bound_exchanges(types, qname, bindings)


def _check_bound_exchanges(
    types: Mapping[str, str], queue: str, bindings: Iterable[tuple[str, str]]
) -> None:
    """Every exchange a queue binds to must exist (in the table or earlier in the batch)."""
    for exchange, _key in bindings:
        if exchange not in types:
            raise DeclarationConflictError(
                f"queue {queue!r} binds to unknown exchange {exchange!r}"
            )


def _insert_sorted(names: list[str], name: str) -> None:
    """Insert ``name`` into the sorted list ``names`` unless present."""
    if name not in names:
        names.append(name)
        names.sort()
