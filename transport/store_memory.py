"""A hub store in dictionaries, for the sans-IO hub tests: nothing survives a restart."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from .store import Store, StoredMessage, StoredResult

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """A store in dictionaries: for the sans-IO hub tests (nothing survives a restart)."""

    def __init__(self) -> None:
        self._messages: dict[str, StoredMessage] = {}
        self._results: dict[str, tuple[StoredResult, float | None]] = {}
        self._meta: dict[str, bytes] = {}
        self._aside: list[tuple[str, str]] = []
        self.commits = 0

    def add_message(self, msg: StoredMessage) -> None:
        """Keep a message."""
        self._messages[msg.id] = msg

    def remove_message(self, message_id: str) -> None:
        """Drop a message."""
        self._messages.pop(message_id, None)

    def messages(self, *, bodies: bool = True) -> Iterator[StoredMessage]:
        """Messages in publish order."""
        rows = sorted(self._messages.values(), key=lambda m: m.seq)
        if not bodies:
            rows = [dataclasses.replace(m, body=b"") for m in rows]
        return iter(rows)

    def get_payload(self, message_id: str) -> tuple[bytes, bytes] | None:
        """A message's header and body."""
        msg = self._messages.get(message_id)
        return (msg.header, msg.body) if msg is not None else None

    def put_result(self, result: StoredResult, expires: float | None) -> None:
        """Keep a result."""
        self._results[result.id] = (result, expires)

    def get_result(self, task_id: str) -> StoredResult | None:
        """Look a result up."""
        entry = self._results.get(task_id)
        return entry[0] if entry else None

    def forget_result(self, task_id: str) -> None:
        """Drop a result."""
        self._results.pop(task_id, None)

    def purge_results(self, now: float) -> int:
        """Drop expired results."""
        dead = [k for k, (_, exp) in self._results.items() if exp is not None and exp < now]
        for k in dead:
            del self._results[k]
        return len(dead)

    def get_meta(self, key: str) -> bytes | None:
        """Read metadata."""
        return self._meta.get(key)

    def set_meta(self, key: str, value: bytes) -> None:
        """Write metadata."""
        self._meta[key] = value

    def delete_meta(self, key: str) -> None:
        """Drop metadata."""
        self._meta.pop(key, None)

    def set_aside(self, msg: StoredMessage, reason: str, now: float) -> None:
        """Move a message aside."""
        self._messages.pop(msg.id, None)
        self._aside.append((msg.id, reason))

    def set_aside_rows(self) -> list[tuple[str, str]]:
        """Rows set aside."""
        return list(self._aside)

    def commit(self) -> None:
        """Count commits (tests check group commit)."""
        self.commits += 1
