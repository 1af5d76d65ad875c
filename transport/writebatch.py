"""A loop turn's writes to one SQLite connection, queued in order and run together.

The hub's store writes a row or two per task (the message in, the message out, the result).
One ``execute`` per row costs a statement-cache lookup, a bind and a step each; queued here
and run at the next read or commit, consecutive writes of one statement go to SQLite as one
``executemany`` (about half the cost per row, measured by ``benchmarks/hub_micro.py``).
Order is kept exactly, so a row written then deleted in the same turn ends deleted.
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["WriteBatch"]


class WriteBatch:
    """Writes not yet handed to SQLite: ``(statement, rows)`` runs, in the order written."""

    __slots__ = ("_runs",)

    def __init__(self) -> None:
        self._runs: list[tuple[str, list[tuple[Any, ...]]]] = []

    def __bool__(self) -> bool:
        return bool(self._runs)

    def add(self, sql: str, row: tuple[Any, ...]) -> None:
        """Queue one write; it joins the previous one's run when it is the same statement."""
        runs = self._runs
        if runs and runs[-1][0] == sql:
            runs[-1][1].append(row)
        else:
            runs.append((sql, [row]))

    def run(self, db: sqlite3.Connection) -> None:
        """Hand every queued write to ``db`` (inside the caller's transaction), emptying the
        queue even if SQLite refuses one (the caller then rolls the transaction back)."""
        runs, self._runs = self._runs, []
        for sql, rows in runs:
            if len(rows) == 1:
                db.execute(sql, rows[0])
            else:
                db.executemany(sql, rows)

    def clear(self) -> None:
        """Forget the queued writes (the transaction is being rolled back)."""
        self._runs.clear()
