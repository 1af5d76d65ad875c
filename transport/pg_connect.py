"""Connecting to the PostgreSQL store: one hub per schema, its commit durability, migrations.

How it works
------------
:func:`connect` opens a connection for a hub and takes a session-level advisory lock on the
schema (PostgreSQL releases it when the connection ends, even when the hub is killed -9): a
second hub on the same schema is refused, as a second hub on a locked data directory is. It
also sets the session's ``synchronous_commit`` from ``hub_sync``: ``full`` waits for the
server's WAL flush at each commit (survives a power cut of the database machine); ``normal``
does not (survives the hub's death and a clean PostgreSQL restart; a crash of the database
server may lose its last fraction of a second of commits, as SQLite's ``normal`` may lose
the last commits on a power cut).

:func:`migrate` is ``celeriac hub --store URL --migrate`` (see :mod:`.pg_schema`).
Messages name the server as ``user@host:port/db schema S``: never the password.
"""

from __future__ import annotations

import time
from typing import Any, Final

import psycopg

from celeriac.exceptions import ImproperlyConfigured

from .pg_schema import LOCK_CLASS, SCHEMA_VERSION, StoreURL, parse_store_url, prepare_schema

__all__ = ["CONNECT_TIMEOUT", "Conn", "connect", "first_line", "migrate", "where"]

#: Seconds a hub keeps trying for its schema's lock before saying another hub holds it.
LOCK_WAIT: Final = 2.0
#: Seconds libpq waits for a connection (unless the URL says ``connect_timeout``).
CONNECT_TIMEOUT: Final = 5

Conn = psycopg.Connection[tuple[Any, ...]]


def connect(url: StoreURL, sync: str, *, shared: bool = False) -> Conn:
    """A connection for the hub of ``url``'s schema (its lock taken), not in autocommit.
    ``shared`` (``celeriac hub --shared``): the lock is taken in share mode, so several shared
    hubs may use the schema at once, but never alongside a hub that is not shared."""
    extra: dict[str, Any] = {}
    if "connect_timeout" not in psycopg.conninfo.conninfo_to_dict(url.conninfo):
        extra["connect_timeout"] = CONNECT_TIMEOUT
    conn: Conn = psycopg.connect(url.conninfo, autocommit=True, **extra)
    try:
        if not _take_lock(conn, url.schema, shared):
            raise ImproperlyConfigured(
                f"another hub is already using the PostgreSQL store {where(url)} "
                + (
                    "without --shared (stop it, or start every hub of the schema with --shared)"
                    if shared
                    else "(one hub per schema unless every hub of it runs with --shared: "
                    "give this one another ?schema=, or use --shared)"
                )
            )
        conn.execute(
            "SELECT set_config('synchronous_commit', %s, false)",
            ("on" if sync == "full" else "off",),
        )
        conn.autocommit = False
    except BaseException:
        conn.close()
        raise
    return conn


def _take_lock(conn: Conn, schema: str, shared: bool) -> bool:
    """Take the schema's advisory lock, trying for :data:`LOCK_WAIT` seconds: the backend of a
    hub that just died (or of this hub's previous connection) may still hold it while it exits."""
    take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        row = conn.execute(f"SELECT {take}(%s, hashtext(%s))", (LOCK_CLASS, schema)).fetchone()
        if row and row[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)  # polling the server: no event tells us the other backend has gone


def migrate(url: str) -> tuple[int, int, str]:
    """Create or upgrade the tables of the store at ``url`` (``celeriac hub --migrate``):
    ``(version before, version now, where)``; idempotent."""
    target = parse_store_url(url)
    place = where(target)
    try:
        with psycopg.connect(target.conninfo, connect_timeout=CONNECT_TIMEOUT) as conn:
            before = prepare_schema(conn, target.schema, migrate=True)
    except psycopg.Error as exc:
        raise ImproperlyConfigured(
            f"cannot use the PostgreSQL store {place}: {first_line(exc)}"
        ) from None
    return before, SCHEMA_VERSION, place


def where(url: StoreURL) -> str:
    """The store's address without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url.conninfo)
    host, port = info.get("host", "localhost"), info.get("port", 5432)
    user = f"{info['user']}@" if info.get("user") else ""
    return f"{user}{host}:{port}/{info.get('dbname', '')} schema {url.schema}"


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (libpq's are several), at most 300 characters."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
