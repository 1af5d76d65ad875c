"""The SQLite store's own cost per task, in CPU µs, with a backlog: random ids against ordered.

The hub's store writes a message row at publish, deletes it at ``DONE`` and stores a result;
ids are the clients' uuid4s, so a write keyed by id lands on a random leaf of its index, and a
commit of a few hundred writes dirties (and writes to the WAL) about a page per write. This
prices each write alone, through :class:`~celeriac.transport.store.SQLiteStore` as the hub
drives it (writes queued, one commit per ``--batch``): ``--tasks`` messages inserted (the
backlog), then deleted, then a result stored for each, once with uuid4 ids and once with ids
that sort in publish order. Messages are keyed by position (:mod:`~celeriac.transport.
store_rowids`: uuid4 ids cost what ordered ones do); results are appended by position too and
found by a CRC-32 of the id (:mod:`~celeriac.transport.store_results`): a small index, still
written at random::

    python benchmarks/hub_sql.py --tasks 20000 --batch 100 --runs 3

Measured (2 cores, 20,000 tasks, 100 writes per commit), insert / delete / result: keyed by
id, uuid4 8.6 / 6.6 / 8.7 µs and ordered 4.7 / 2.6 / 4.9; keyed by position, uuid4 4.4 / 1.9.
Results by a hash of the id (100,000 tasks, lowest of 2): 8.6 -> 7.7 µs (uuid4).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from celeriac.transport.store import SQLiteStore, StoredMessage, StoredResult

_PHASES = ("insert", "delete", "result")


def run(tasks: int, batch: int, ordered: bool) -> dict[str, float]:
    """CPU µs per task of each phase, on a fresh store in a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(f"{tmp}/hub.sqlite3")
        ids = [f"{i:012d}-{uuid.uuid4()}" if ordered else str(uuid.uuid4()) for i in range(tasks)]
        header, body = os.urandom(194), b"[[1, 2], {}, {}]"
        spent: dict[str, float] = {}
        writes = {
            "insert": lambda i, n: store.add_message(
                StoredMessage(i, "celery", 0, None, n, header, body)
            ),
            "delete": lambda i, n: store.remove_message(i),
            "result": lambda i, n: store.put_result(
                StoredResult(i, "SUCCESS", header[:80], b"2"), time.time() + 86400
            ),
        }
        for phase in _PHASES:
            write = writes[phase]
            cpu = time.thread_time()
            for start in range(0, tasks, batch):
                for n, mid in enumerate(ids[start : start + batch], start):
                    write(mid, n)
                store.commit()
            spent[phase] = (time.thread_time() - cpu) / tasks * 1e6
        store.close()
    return spent


def main() -> None:
    """Run both id orders ``--runs`` times, alternated; print the lowest of each phase."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="writes per commit")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    best: dict[bool, dict[str, float]] = {}
    for _ in range(args.runs):
        for ordered in (False, True):
            spent = run(args.tasks, args.batch, ordered)
            kept = best.setdefault(ordered, spent)
            for phase in _PHASES:
                kept[phase] = min(kept[phase], spent[phase])
    print(f"CPU µs per task, {args.tasks} tasks, {args.batch} writes per commit (lowest)")
    print(f"{'ids':14s}" + "".join(f"{p:>9s}" for p in _PHASES))
    for ordered, label in ((False, "uuid4"), (True, "publish order")):
        print(f"{label:14s}" + "".join(f"{best[ordered][p]:9.1f}" for p in _PHASES))


if __name__ == "__main__":
    main()
