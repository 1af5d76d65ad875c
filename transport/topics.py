"""Topic matching for the hub's topic exchanges: one pattern, or every binding at once.

Topic semantics
---------------
Words are split on ``.``; ``*`` matches exactly one word, ``#`` zero or more, anywhere in the
pattern (``#.#`` is the same as ``#``). Empty words are words: ``"a..b"`` has three words and
``"a.#.b"`` matches it. Like RabbitMQ (``rabbit_db_topic_exchange:split_topic_key/1``), the
empty routing key ``""`` has *zero* words, not one empty word: ``"#"`` matches it, ``"*"`` does
not. The empty pattern ``""`` therefore matches only the empty key.
"""

from __future__ import annotations

__all__ = ["TopicTrie", "split_words", "topic_matches"]


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
