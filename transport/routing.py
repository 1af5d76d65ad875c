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

Topic semantics
---------------
Words are split on ``.``; ``*`` matches exactly one word, ``#`` zero or more, anywhere in the
pattern (``#.#`` is the same as ``#``). Empty words are words: ``"a..b"`` has three words and
``"a.#.b"`` matches it. Like RabbitMQ (``rabbit_db_topic_exchange:split_topic_key/1``), the
empty routing key ``""`` has *zero* words, not one empty word: ``"#"`` matches it, ``"*"`` does
not. The empty pattern ``""`` therefore matches only the empty key.

Wire form of declarations
-------------------------
exchange: ``{"name": str, "type": "direct" | "topic" | "fanout"}``
queue: ``{"name": str, "max_priority": int | None,
"bindings": [{"exchange": str, "routing_key": str}]}``

Errors
------
A declaration of the wrong shape raises :class:`~celeriac.exceptions.ProtocolError` (the peer
sent something the protocol does not allow). A well-formed declaration that conflicts with the
hub's state (an exchange re-declared with another type, a queue with another ``max_priority``)
raises :class:`DeclarationConflictError`, which is both a ``ProtocolError`` (one ``except`` in
the hub covers every declaration failure) and an ``ImproperlyConfigured`` (the fix is in
somebody's configuration): the hub should reply with the reason and keep trusting the peer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from celeriac.exceptions import ImproperlyConfigured, ProtocolError

__all__ = [
    "DEAD_LETTER_QUEUE",
    "DEFAULT_EXCHANGE",
    "EXCHANGE_TYPES",
    "MAX_NAME_LENGTH",
    "DeclarationConflictError",
    "ExchangeTable",
    "TopicTrie",
    "split_words",
    "topic_matches",
]

#: The nameless direct exchange every queue is reachable through by its own name.
DEFAULT_EXCHANGE: Final = ""
#: The exchange types the hub knows.
EXCHANGE_TYPES: Final = frozenset({"direct", "topic", "fanout"})
#: Where the hub keeps messages no queue binds when the publisher asked for dead-lettering
#: (setting ``task_unroutable = "dead_letter"``) instead of an error.
DEAD_LETTER_QUEUE: Final = "celeriac.unroutable"
#: AMQP short strings: names and routing keys longer than this are refused (this also bounds
#: the work one topic match can cost).
MAX_NAME_LENGTH: Final = 255
#: Largest ``max_priority`` a queue may declare (RabbitMQ's limit).
MAX_PRIORITY: Final = 255

_SNAPSHOT_VERSION: Final = 1
_TOPIC_CACHE_SIZE: Final = 4096
_EXCHANGE_KEYS: Final = frozenset({"name", "type"})
_QUEUE_KEYS: Final = frozenset({"name", "max_priority", "bindings"})
_BINDING_KEYS: Final = frozenset({"exchange", "routing_key"})


class DeclarationConflictError(ProtocolError, ImproperlyConfigured):
    """A well-formed declaration that contradicts what the hub already holds.

    Both a :class:`ProtocolError` and an :class:`ImproperlyConfigured`: the hub replies with the
    reason (and does not distrust the peer); the client raises it as a configuration error.
    """


# -- topic matching ----------------------------------------------------------------------------


def split_words(key: str) -> list[str]:
    """Split a routing key or pattern into words; ``""`` has zero words (RabbitMQ's rule)."""
    return key.split(".") if key else []


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Tell whether a topic binding ``pattern`` matches ``routing_key`` (AMQP semantics).

    Runs the pattern as a small NFA over the key's words: O(len(pattern) * len(key)), whatever
    the number of ``#`` in the pattern.
    """
    words = split_words(pattern)
    states = _hash_closure(words, {0})
    for word in split_words(routing_key):
        states = _hash_closure(words, _step(words, states, word))
        if not states:
            return False
    return len(words) in states


def _step(words: list[str], states: set[int], word: str) -> set[int]:
    """The pattern positions reachable from ``states`` by consuming ``word``."""
    nxt: set[int] = set()
    for i in states:
        if i < len(words):
            w = words[i]
            if w == "#":
                nxt.add(i)  # '#' swallows the word and may swallow more
            elif w in ("*", word):
                nxt.add(i + 1)
    return nxt


def _hash_closure(words: list[str], states: set[int]) -> set[int]:
    """Add the positions reachable by letting each ``#`` match zero words."""
    todo = list(states)
    while todo:
        i = todo.pop()
        if i < len(words) and words[i] == "#" and i + 1 not in states:
            states.add(i + 1)
            todo.append(i + 1)
    return states


class _Node:
    """One trie node: the edge that led here was a word, ``*`` or ``#``."""

    __slots__ = ("children", "is_hash", "queues")

    def __init__(self, is_hash: bool = False) -> None:
        self.children: dict[str, _Node] = {}
        self.queues: set[str] = set()
        self.is_hash = is_hash

    def is_empty(self) -> bool:
        """True when nothing ends here and nothing hangs below."""
        return not self.children and not self.queues


class TopicTrie:
    """The bindings of one topic exchange, as a trie over pattern words.

    Matching simulates every binding at once (a set of live trie nodes per key word), so its cost
    grows with the key's length and the trie's branching, not with the number of bindings.
    """

    def __init__(self) -> None:
        self._root = _Node()

    def add(self, pattern: str, queue: str) -> None:
        """Bind ``queue`` with ``pattern``."""
        node = self._root
        for word in split_words(pattern):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node(is_hash=word == "#")
            node = child
        node.queues.add(queue)

    def remove(self, pattern: str, queue: str) -> None:
        """Unbind ``queue`` from ``pattern`` (no-op if absent) and prune emptied nodes."""
        path = [self._root]
        words = split_words(pattern)
        for word in words:
            child = path[-1].children.get(word)
            if child is None:
                return
            path.append(child)
        path[-1].queues.discard(queue)
        for depth in range(len(words), 0, -1):
            if not path[depth].is_empty():
                break
            del path[depth - 1].children[words[depth - 1]]

    def match(self, routing_key: str) -> set[str]:
        """The queues whose patterns match ``routing_key``."""
        live = self._closure({self._root})
        for word in split_words(routing_key):
            live = self._closure(self._advance(live, word))
            if not live:
                return set()
        found: set[str] = set()
        for node in live:
            found |= node.queues
        return found

    @staticmethod
    def _advance(live: set[_Node], word: str) -> set[_Node]:
        """The nodes reached from ``live`` by consuming one word."""
        nxt: set[_Node] = set()
        for node in live:
            if node.is_hash:
                nxt.add(node)  # '#' may keep swallowing words
            for edge in (word, "*"):
                child = node.children.get(edge)
                if child is not None:
                    nxt.add(child)
        return nxt

    @staticmethod
    def _closure(live: set[_Node]) -> set[_Node]:
        """Add the '#' children of live nodes: a '#' may match zero words."""
        todo = list(live)
        while todo:
            child = todo.pop().children.get("#")
            if child is not None and child not in live:
                live.add(child)
                todo.append(child)
        return live


# -- validation of wire declarations -----------------------------------------------------------


def _check_name(value: Any, what: str, *, allow_empty: bool) -> str:
    """Return ``value`` if it is a usable name or key, else raise ProtocolError."""
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ProtocolError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ProtocolError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    return value


def _check_keys(value: Any, keys: frozenset[str], what: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a dict with exactly ``keys``, else raise ProtocolError."""
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{what} must be a map, got {type(value).__name__}")
    present = set(value)
    if present != keys:
        missing = sorted(keys - present)
        extra = sorted(repr(k) for k in present - keys)
        raise ProtocolError(f"{what} has missing keys {missing} / unexpected keys {extra}")
    return value


def _check_max_priority(value: Any, what: str) -> int | None:
    """Return a valid ``max_priority`` (None or 1..255) or raise ProtocolError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{what}.max_priority must be an integer or None")
    if not 1 <= value <= MAX_PRIORITY:
        raise ProtocolError(f"{what}.max_priority must be in 1..{MAX_PRIORITY}, got {value}")
    return value


def _parse_exchange(decl: Any, index: int) -> tuple[str, str]:
    """Validate one exchange declaration; return ``(name, type)``."""
    what = f"exchange declaration #{index}"
    d = _check_keys(decl, _EXCHANGE_KEYS, what)
    name = _check_name(d["name"], f"{what}.name", allow_empty=True)
    kind = d["type"]
    if not isinstance(kind, str) or kind not in EXCHANGE_TYPES:
        raise ProtocolError(f"{what}.type must be one of {sorted(EXCHANGE_TYPES)}, got {kind!r}")
    if name == DEFAULT_EXCHANGE and kind != "direct":
        raise ProtocolError(f"{what}: the default exchange '' is direct, not {kind}")
    return name, kind


def _parse_binding(decl: Any, what: str) -> tuple[str, str]:
    """Validate one binding of a queue declaration; return ``(exchange, routing_key)``."""
    d = _check_keys(decl, _BINDING_KEYS, what)
    exchange = _check_name(d["exchange"], f"{what}.exchange", allow_empty=True)
    if exchange == DEFAULT_EXCHANGE:
        raise ProtocolError(f"{what}: the default exchange '' cannot be bound")
    key = _check_name(d["routing_key"], f"{what}.routing_key", allow_empty=True)
    return exchange, key


def _parse_queue(decl: Any, index: int) -> tuple[str, int | None, list[tuple[str, str]]]:
    """Validate one queue declaration; return ``(name, max_priority, bindings)``."""
    what = f"queue declaration #{index}"
    d = _check_keys(decl, _QUEUE_KEYS, what)
    name = _check_name(d["name"], f"{what}.name", allow_empty=False)
    max_priority = _check_max_priority(d["max_priority"], what)
    raw = d["bindings"]
    if not isinstance(raw, list | tuple):
        raise ProtocolError(f"{what}.bindings must be a list, got {type(raw).__name__}")
    bindings = [_parse_binding(b, f"{what}.bindings[{i}]") for i, b in enumerate(raw)]
    return name, max_priority, bindings


def _check_rules(
    exchanges: list[tuple[str, str]],
    queues: list[tuple[str, int | None, list[tuple[str, str]]]],
) -> None:
    """The rules of :func:`_parse_exchange` and :func:`_parse_queue` on parsed values."""
    for i, (name, kind) in enumerate(exchanges):
        _parse_exchange({"name": name, "type": kind}, i)
    for i, (name, max_priority, bindings) in enumerate(queues):
        wire = [{"exchange": e, "routing_key": k} for e, k in bindings]
        _parse_queue({"name": name, "max_priority": max_priority, "bindings": wire}, i)


def _as_list(value: Any, what: str) -> list[Any]:
    """Return ``value`` as a list if it is a list or tuple, else raise ProtocolError."""
    if not isinstance(value, list | tuple):
        raise ProtocolError(f"{what} must be a list, got {type(value).__name__}")
    return list(value)


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
        _check_name(name, "exchange name", allow_empty=True)
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
        _check_name(name, "queue name", allow_empty=False)
        _check_max_priority(max_priority, f"queue {name!r}")
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
        parsed_x = [_parse_exchange(d, i) for i, d in enumerate(_as_list(exchanges, "exchanges"))]
        parsed_q = [_parse_queue(d, i) for i, d in enumerate(_as_list(queues, "queues"))]
        self.apply_parsed(parsed_x, parsed_q)

    def apply_parsed(
        self,
        exchanges: list[tuple[str, str]],
        queues: list[tuple[str, int | None, list[tuple[str, str]]]],
    ) -> None:
        """Apply declarations already in parsed form (``(name, type)`` and ``(name,
        max_priority, [(exchange, routing_key)])``, as the protocol decodes them), all or
        nothing; the naming rules are checked here (ProtocolError), conflicts as above."""
        _check_rules(exchanges, queues)
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
        d = _check_keys(data, frozenset({"version", "exchanges", "queues"}), "snapshot")
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
        _check_name(routing_key, "routing key", allow_empty=True)
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
