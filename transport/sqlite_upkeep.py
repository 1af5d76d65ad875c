"""Keeping the hub's SQLite file small: WAL checkpoints and giving freed pages back to the disk.

How it works
------------
The hub's own connection never checkpoints (``wal_autocheckpoint=0``: a checkpoint fsyncs, and
took ~400 ms on slow disks, far too long inside the hub's loop). A background thread,
:class:`Upkeep`, with its own connection, every :data:`INTERVAL` seconds:

* checkpoints ``PASSIVE`` while the hub writes (it never blocks the writer);
* once the hub has written nothing for a whole interval (``PRAGMA data_version`` unchanged),
  or when the WAL has grown past its limit, checkpoints ``TRUNCATE``: the ``-wal`` file goes
  back to zero bytes;
* when idle and the database has many free pages (deleted messages and results:
  :data:`VACUUM_MIN_FREE` pages and a quarter of the file at least), runs
  ``PRAGMA incremental_vacuum`` in steps of :data:`VACUUM_STEP` pages, so the file itself
  shrinks after a drain (it needs ``auto_vacuum=INCREMENTAL``: see :func:`prepare`).

None of it waits: this connection has no busy timeout, so when the hub holds the write lock
a step fails at once and the next interval tries again.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Final

from celeriac._log import get_logger

__all__ = ["INTERVAL", "Upkeep", "prepare"]

_log = get_logger("celeriac.hub")

#: Seconds between two upkeep rounds.
INTERVAL: Final = 0.5
#: Free pages (4 KiB each by default) before the file is shrunk: small churn is left alone.
VACUUM_MIN_FREE: Final = 256
#: Pages given back per round: each step is one short write transaction.
VACUUM_STEP: Final = 2048


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Give a database ``auto_vacuum=INCREMENTAL`` before its tables exist; convert an older
    one, made without it, once (a ``VACUUM``, logged: it rewrites the file and needs as much
    free disk again). A conversion that fails (disk full) is logged and the hub goes on with
    a file that only grows back to its high-water mark."""
    mode = db.execute("PRAGMA auto_vacuum").fetchone()[0]
    if mode == 2:  # INCREMENTAL already
        return
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if not tables:
        return  # a new file: the setting takes effect when the first table is written
    _log.info("store_vacuum_converting", path=str(path), reason="auto_vacuum=INCREMENTAL")
    try:
        db.execute("VACUUM")
    except sqlite3.Error as exc:
        _log.warning("store_vacuum_failed", path=str(path), error=str(exc)[:200])


class Upkeep:
    """The checkpoint and vacuum thread of one SQLite store (see the module's docstring)."""

    def __init__(self, path: Path, wal_size_limit: int) -> None:
        self.path = path
        self.wal_size_limit = wal_size_limit
        self._wal = path.with_name(path.name + "-wal")
        self._closing = threading.Event()
        self._last_version: int | None = None
        self._thread = threading.Thread(target=self._loop, name="celeriac-checkpoint", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (it finishes the step it is in)."""
        self._closing.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=0")
        try:
            while not self._closing.wait(INTERVAL):
                try:
                    self.round(db)
                except sqlite3.Error:  # busy, or the disk full: the next interval tries again
                    continue
        finally:
            db.close()

    def round(self, db: sqlite3.Connection) -> None:
        """One upkeep round on ``db`` (a connection of its own, no busy timeout)."""
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        idle, self._last_version = version == self._last_version, version
        if idle:
            self._shrink(db)
        db.execute(f"PRAGMA wal_checkpoint({'TRUNCATE' if idle or self._wal_big() else 'PASSIVE'})")

    def _wal_big(self) -> bool:
        try:
            return self._wal.stat().st_size > self.wal_size_limit
        except OSError:
            return False

    @staticmethod
    def _shrink(db: sqlite3.Connection) -> None:
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        if free >= VACUUM_MIN_FREE and free * 4 >= pages:
            # executescript steps the statement to its end (execute frees one page per step)
            db.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP});")
