"""A loop turn's writes to one SQLite connection, queued in order and run together.

The hub's store writes a row or two per task (the message in, the message out, the result).
One ``execute`` per row costs a statement-cache lookup, a bind and a step each; queued here
and run at the next read or commit, consecutive writes of one statement go to SQLite together
(about half the cost per row, measured by ``benchmarks/hub_micro.py``). Order is kept exactly,
so a row written then deleted in the same turn ends deleted.

Two statements the hub writes per task go cheaper still (issue 18, ``benchmarks/hub_sql.py``,
20,000 rows, 100 a commit): an insert named in ``multi_row`` runs as ``INSERT ... VALUES (...),
(...)`` of up to :data:`MULTI_ROW` rows a step (a message row 3.5 -> 3.2 µs), and a delete by
position named in ``ranges`` as one ``BETWEEN`` per run of consecutive positions (the hub's
messages are acked about in publish order: 1.75 -> 1.3 µs a row). Not for rows keyed by a
random id: a result row's insert that way went 6.5 -> 8.3 µs.

Order is kept per table, not across tables: writes to different tables commute (the store's
tables have no foreign keys, and its one trigger writes ``result_hashes``, which no queued
write touches: :mod:`.store_resulthashes`), so each table's writes are queued apart and run
together. A turn of ``DONE`` writes, per task, a message's delete then its result's insert:
queued in one line they made runs of one row each (one ``execute`` per row, no ``BETWEEN``);
per table, one run of deletes and one of inserts (``benchmarks/hub_micro.py``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["MULTI_ROW", "WriteBatch"]

#: Most rows of one multi-row insert: within SQLite's oldest limit of 999 parameters for rows
#: of up to 15 columns. A run is cut into steps of these sizes, biggest first (few distinct
#: statements for SQLite's statement cache).
MULTI_ROW: Final = 64
_STEPS: Final = (64, 16, 4, 1)
#: The table a write statement changes (``INSERT [OR ...] INTO t``, ``DELETE FROM t``,
#: ``UPDATE [OR ...] t``).
_TABLE: Final = re.compile(
    r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|DELETE\s+FROM|UPDATE(?:\s+OR\s+\w+)?)"
    r"\s+([\w\"]+)",
    re.IGNORECASE,
)


def table_of(sql: str) -> str:
    """The table ``sql`` writes to (a statement of another form raises ``ValueError``)."""
    found = _TABLE.match(sql)
    if found is None:
        raise ValueError(f"not a write to one table: {sql!r}")
    return found.group(1).strip('"').lower()


class WriteBatch:
    """Writes not yet handed to SQLite: ``(statement, rows)`` runs per table, each table's in
    the order written.

    ``multi_row``: insert statements (``... VALUES (?, ...)``) that may take many rows a step;
    ``ranges``: ``DELETE ... WHERE key = ?`` statements on an integer key, each mapped to its
    ``DELETE ... WHERE key BETWEEN ? AND ?`` form."""

    __slots__ = ("_lanes", "_multi", "_queued", "_ranges", "_runs")

    def __init__(
        self, *, multi_row: Iterable[str] = (), ranges: Mapping[str, str] | None = None
    ) -> None:
        #: Each table's runs (lists kept for the batch's life), tables in the order first seen.
        self._runs: dict[str, list[tuple[str, list[tuple[Any, ...]]]]] = {}
        #: Each statement seen: its table's list of runs (one lookup a write).
        self._lanes: dict[str, list[tuple[str, list[tuple[Any, ...]]]]] = {}
        self._queued = False
        self._multi = {sql: _multi_row_forms(sql) for sql in multi_row}
        self._ranges = dict(ranges or {})

    def __bool__(self) -> bool:
        return self._queued

    def add(self, sql: str, row: tuple[Any, ...]) -> None:
        """Queue one write; it joins its table's last run when that is the same statement."""
        lane = self._lanes.get(sql)
        if lane is None:
            lane = self._lanes[sql] = self._runs.setdefault(table_of(sql), [])
        if lane and lane[-1][0] == sql:
            lane[-1][1].append(row)
        else:
            lane.append((sql, [row]))
        self._queued = True

    def run(self, db: sqlite3.Connection) -> None:
        """Hand every queued write to ``db`` (inside the caller's transaction), emptying the
        queue even if SQLite refuses one (the caller then rolls the transaction back)."""
        queued = [run for runs in self._runs.values() for run in runs]
        self.clear()
        for sql, rows in queued:
            if len(rows) == 1:
                db.execute(sql, rows[0])
                continue
            forms = self._multi.get(sql)
            if forms is not None:
                _insert_rows(db, forms, rows)
                continue
            between = self._ranges.get(sql)
            if between is not None:
                db.executemany(between, _spans(rows))
            else:
                db.executemany(sql, rows)

    def clear(self) -> None:
        """Forget the queued writes (the transaction is being rolled back)."""
        for runs in self._runs.values():
            runs.clear()
        self._queued = False


def _multi_row_forms(sql: str) -> dict[int, str]:
    """``sql`` (one row's ``VALUES (?, ...)``) for each step size of :data:`_STEPS`."""
    values = sql[sql.rindex("(") :]
    return {n: sql + f", {values}" * (n - 1) for n in _STEPS}


def _insert_rows(
    db: sqlite3.Connection, forms: dict[int, str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` in order, in steps of the sizes of :data:`_STEPS` (biggest first)."""
    at, total = 0, len(rows)
    for n in _STEPS:
        sql = forms[n]
        while total - at >= n:
            if n == 1:
                db.execute(sql, rows[at])
            else:
                db.execute(sql, [value for row in rows[at : at + n] for value in row])
            at += n


def _spans(rows: list[tuple[Any, ...]]) -> list[tuple[int, int]]:
    """The ``(first, last)`` runs of consecutive keys among ``rows`` (one key each)."""
    keys = sorted({row[0] for row in rows})
    spans: list[tuple[int, int]] = []
    first = last = keys[0]
    for key in keys[1:]:
        if key != last + 1:
            spans.append((first, last))
            first = key
        last = key
    spans.append((first, last))
    return spans
