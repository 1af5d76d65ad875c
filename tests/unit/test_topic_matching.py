"""Topic matching (AMQP semantics) against a naive reference model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celeriac.transport.routing import ExchangeTable
from celeriac.transport.topics import TopicTrie, split_words, topic_matches

pytestmark = pytest.mark.property


def reference_words(text: str) -> list[str]:
    """RabbitMQ's split: "" is zero words, otherwise split on every dot (empty words kept)."""
    return text.split(".") if text else []


def reference_match(pattern: list[str], words: list[str]) -> bool:
    """The obvious recursive definition, exponential but clearly right."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(reference_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return head in ("*", words[0]) and reference_match(rest, words[1:])


def reference(pattern: str, key: str) -> bool:
    """The reference model on strings."""
    return reference_match(reference_words(pattern), reference_words(key))


key_words = st.lists(st.sampled_from(["a", "b", "", "ab", "*", "#"]), max_size=7)
pattern_words = st.lists(st.sampled_from(["a", "b", "", "*", "#"]), max_size=7)
keys = key_words.map(".".join)
patterns = pattern_words.map(".".join)


@given(patterns, keys)
def test_topic_matches_agrees_with_reference(pattern: str, key: str) -> None:
    """topic_matches equals the recursive reference on random patterns and keys."""
    assert topic_matches(pattern, key) == reference(pattern, key)


@given(st.lists(st.tuples(patterns, st.sampled_from(["q1", "q2", "q3"])), max_size=8), keys)
def test_trie_agrees_with_topic_matches(bindings: list[tuple[str, str]], key: str) -> None:
    """A trie of many bindings returns exactly the queues whose pattern matches."""
    trie = TopicTrie()
    for pattern, queue in bindings:
        trie.add(pattern, queue)
    expected = {q for p, q in bindings if reference(p, key)}
    assert trie.match(key) == expected


@given(
    st.lists(st.tuples(patterns, st.sampled_from(["q1", "q2"])), max_size=8),
    st.data(),
    keys,
)
def test_trie_after_removals(
    bindings: list[tuple[str, str]], data: st.DataObject, key: str
) -> None:
    """Removing some bindings leaves exactly the remaining ones matching."""
    trie = TopicTrie()
    for pattern, queue in bindings:
        trie.add(pattern, queue)
    removed = data.draw(st.lists(st.sampled_from(bindings), max_size=4)) if bindings else []
    for pattern, queue in removed:
        trie.remove(pattern, queue)
    kept = set(bindings) - set(removed)
    assert trie.match(key) == {q for p, q in kept if reference(p, key)}


@given(st.lists(st.tuples(patterns, st.sampled_from(["q1", "q2", "q3"])), max_size=8), keys)
def test_topic_exchange_routes_like_reference(bindings: list[tuple[str, str]], key: str) -> None:
    """ExchangeTable.route on a topic exchange (cached) matches the reference, sorted, twice."""
    table = ExchangeTable()
    table.declare_exchange("t", "topic")
    for queue in ("q1", "q2", "q3"):
        table.declare_queue(queue)
    for pattern, queue in bindings:
        table.bind("t", pattern, queue)
    expected = sorted({q for p, q in bindings if reference(p, key)})
    assert table.route("t", key) == expected
    assert table.route("t", key) == expected  # second call is served from the cache


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("quick.orange.rabbit", {"Q1", "Q2"}),
        ("lazy.orange.elephant", {"Q1", "Q2"}),
        ("quick.orange.fox", {"Q1"}),
        ("lazy.brown.fox", {"Q2"}),
        ("lazy.pink.rabbit", {"Q2"}),
        ("quick.brown.fox", set()),
        ("orange", set()),
        ("quick.orange.male.rabbit", set()),
        ("lazy.orange.male.rabbit", {"Q2"}),
        ("lazy", {"Q2"}),
    ],
)
def test_rabbitmq_tutorial_five(key: str, expected: set[str]) -> None:
    """The examples of RabbitMQ's topic tutorial route as the tutorial says."""
    trie = TopicTrie()
    trie.add("*.orange.*", "Q1")
    trie.add("*.*.rabbit", "Q2")
    trie.add("lazy.#", "Q2")
    assert trie.match(key) == expected


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("#", "", True),
        ("*", "", False),  # RabbitMQ: the empty key has zero words
        ("", "", True),
        ("", "a", False),
        ("*", ".", False),  # "." is two empty words
        ("*.*", ".", True),
        ("a.#.b", "a..b", True),  # empty words are words
        ("a.#.b", "a.b", True),
        ("a.*.b", "a..b", True),
        ("a.*.b", "a.b", False),
        ("#.#", "", True),
        ("#.#", "a.b.c", True),
        ("#.*", "..", True),
        ("*.#.*", "a", False),
        ("*.#.*", "a.b", True),
        ("*.#.*", "a.b.c.d", True),
        ("#.a", "b.a", True),
        ("#.a", "a.b", False),
        ("a.#", "a", True),
        ("a.", "a", False),
        ("a.", "a.", True),
    ],
)
def test_edge_cases(pattern: str, key: str, expected: bool) -> None:
    """Empty words, '#' at any position and '#.#' behave like RabbitMQ."""
    assert topic_matches(pattern, key) is expected
    trie = TopicTrie()
    trie.add(pattern, "q")
    assert (trie.match(key) == {"q"}) is expected


def test_split_words_of_empty_key_is_empty() -> None:
    """The empty routing key has zero words; a lone dot has two empty ones."""
    assert split_words("") == []
    assert split_words(".") == ["", ""]


def test_many_hashes_stay_fast() -> None:
    """A pattern full of '#' against a long key finishes at once (no backtracking blow-up)."""
    pattern = ".".join(["#"] * 60 + ["x"])
    key = ".".join(["a"] * 200)
    assert not topic_matches(pattern, key)
    trie = TopicTrie()
    trie.add(pattern, "q")
    assert trie.match(key) == set()


def test_trie_prunes_removed_patterns() -> None:
    """Removing the last binding of a pattern leaves an empty trie behind."""
    trie = TopicTrie()
    trie.add("a.*.#", "q")
    trie.add("a.b", "q")
    trie.remove("a.*.#", "q")
    trie.remove("a.b", "q")
    trie.remove("never.bound", "q")
    assert trie.match("a.b") == set()
    assert trie._root.is_empty()
