"""A shared hub's ear: ``LISTEN`` on its schema's channel, on a connection of its own.

How it works
------------
The other hubs of the schema ``NOTIFY`` at each commit (see :mod:`.store_pg_shared`): ``q:``
the queues that got rows to claim, ``r:`` ids with a new result, ``v:`` revoked ids, ``t:``
those revoked with ``terminate`` (``SIGNAL:id``), ``b:`` the exchange table changed, each a
JSON list. The connection's socket
(:meth:`Listener.fileno`) goes into the hub loop's poller, so a notification wakes the loop at
once; :meth:`Listener.drain` reads what came, without waiting.

A lost connection is logged and opened again no sooner than a doubling backoff allows; while
it is away the hub still claims and checks its waiters at each beat, so notifications only
make things faster, never correct.
"""

from __future__ import annotations

import json
import time
from typing import Final

import psycopg

from celeriac._log import get_logger

from .pg_connect import CONNECT_TIMEOUT, first_line
from .pg_schema import StoreURL

__all__ = ["Listener", "Notes", "note_payloads"]

_log = get_logger("celeriac.hub")

#: Notifications read per drain (the rest at the next turn).
DRAIN_LIMIT: Final = 1000
RETRY_MIN: Final = 0.5
RETRY_MAX: Final = 15.0

#: Bytes of one NOTIFY payload (PostgreSQL's limit is 8000).
NOTE_BYTES: Final = 7000

#: kind -> names heard since the last drain (kinds: ``q``, ``r``, ``v``, ``t``, ``b``).
Notes = dict[str, set[str]]


class Listener:
    """``LISTEN`` on one channel; see the module docstring."""

    def __init__(self, url: StoreURL, channel: str) -> None:
        self.url = url
        self.channel = channel
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._retry_at = 0.0
        self._delay = RETRY_MIN
        self._open()

    def _open(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        try:
            conn = psycopg.connect(
                self.url.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
            conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel)))
        except psycopg.Error as exc:
            self._retry_at = time.monotonic() + self._delay
            self._delay = min(self._delay * 2, RETRY_MAX)
            _log.warning("hub_listen_failed", error=first_line(exc))
            return
        self._conn, self._delay = conn, RETRY_MIN

    def fileno(self) -> int | None:
        """The socket to poll (None while the connection is away)."""
        if self._conn is None:
            self._open()
        return None if self._conn is None else self._conn.fileno()

    def drain(self, own: int | None = None) -> Notes:
        """What the other hubs said since the last drain (never waits); ``own``: the backend
        pid of this hub's store connection, whose notifications are skipped."""
        notes: Notes = {}
        conn = self._conn
        if conn is None:
            self._open()
            return notes
        try:
            for note in conn.notifies(timeout=0, stop_after=DRAIN_LIMIT):
                if note.pid == own:
                    continue
                kind, _, payload = note.payload.partition(":")
                try:
                    names = json.loads(payload)
                except ValueError:
                    continue
                if isinstance(names, list):
                    notes.setdefault(kind, set()).update(str(n) for n in names)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            _log.warning("hub_listen_lost", error=first_line(exc))
            self.close()
            self._retry_at = time.monotonic() + self._delay
        return notes

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def note_payloads(kind: str, names: dict[str, None]) -> list[str]:
    """``kind:["name", ...]`` payloads (JSON: a name may hold any character) under
    :data:`NOTE_BYTES` each; a name too long for one is left out (its hub finds the row or
    result at its next beat)."""
    out: list[str] = []
    part: list[str] = []
    size = 0
    for name in names:
        cost = len(json.dumps(name)) + 1
        if cost > NOTE_BYTES:
            continue
        if size + cost > NOTE_BYTES and part:
            out.append(f"{kind}:" + json.dumps(part))
            part, size = [], 0
        part.append(name)
        size += cost
    if part:
        out.append(f"{kind}:" + json.dumps(part))
    return out
