"""The hub's tables in PostgreSQL: where they live (the store URL), their versions, migrations.

How it works
------------
A store URL is a libpq URL (``postgresql://user@host:5432/db``) with one parameter of ours,
``schema`` (default ``celeriac``): the PostgreSQL schema that holds the hub's tables, so one
database can hold several independent hubs (or test runs). It is taken off the URL before
libpq sees it.

The schema's version is one row in ``<schema>.schema_version``. :data:`MIGRATIONS` lists the
SQL that takes version ``i`` to ``i + 1``; :func:`prepare_schema` runs under a transaction-level
advisory lock (two hubs starting at once never migrate twice) and:

* on an empty schema (first start), creates every table (the same migrations, from 0);
* on the current version, does nothing;
* on an older version, migrates only when asked (``celeriac hub --store URL --migrate``): a
  shared database is upgraded on purpose, not as a side effect of starting one hub;
* on a newer version (written by a newer celeriac), refuses: this code would misread it.

Every migration is idempotent (``IF NOT EXISTS``), and a migration and its version bump
commit together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "DEFAULT_SCHEMA",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SchemaError",
    "StoreURL",
    "describe",
    "is_postgres_url",
    "parse_store_url",
    "prepare_schema",
]

DEFAULT_SCHEMA: Final = "celeriac"
_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: The first key of the hub's advisory locks (the second is the schema's hash): "cel".
LOCK_CLASS: Final = 0x63656C

#: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``; {s} is the schema.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE IF NOT EXISTS {s}.messages (
            id text PRIMARY KEY,
            queue text NOT NULL,
            priority integer NOT NULL DEFAULT 0,
            eta double precision,
            seq bigint NOT NULL,
            header bytea NOT NULL,
            body bytea NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS messages_seq ON {s}.messages (seq)",
        """CREATE TABLE IF NOT EXISTS {s}.results (
            id text PRIMARY KEY,
            state text NOT NULL,
            header bytea NOT NULL,
            body bytea NOT NULL,
            expires double precision
        )""",
        "CREATE INDEX IF NOT EXISTS results_expires ON {s}.results (expires) "
        "WHERE expires IS NOT NULL",
        "CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value bytea NOT NULL)",
        """CREATE TABLE IF NOT EXISTS {s}.set_aside (
            id text, queue text, priority integer, eta double precision, seq bigint,
            header bytea, body bytea,
            reason text NOT NULL,
            at double precision NOT NULL
        )""",
    ),
    # 2: several hubs on one schema (``celeriac hub --shared``, see :mod:`.store_pg_shared`):
    # a message row claimed by a hub names it (``owner``) until ``lease_until`` or while the
    # hub's ``hubs`` row is fresh; ``eta`` is the run_at of a delayed row (NULL once due).
    (
        "ALTER TABLE {s}.messages ADD COLUMN IF NOT EXISTS owner text, "
        "ADD COLUMN IF NOT EXISTS lease_until double precision, "
        "ADD COLUMN IF NOT EXISTS deliveries integer NOT NULL DEFAULT 0, "
        "ADD COLUMN IF NOT EXISTS lost integer NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS messages_claim ON {s}.messages (queue, priority DESC, seq) "
        "WHERE owner IS NULL AND eta IS NULL",
        "CREATE INDEX IF NOT EXISTS messages_due ON {s}.messages (eta) "
        "WHERE owner IS NULL AND eta IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS messages_leases ON {s}.messages (lease_until) "
        "WHERE owner IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS {s}.hubs (
            hub_id text PRIMARY KEY,
            seen_at double precision NOT NULL,
            started_at double precision NOT NULL
        )""",
        "CREATE TABLE IF NOT EXISTS {s}.chords (id text PRIMARY KEY, remaining integer NOT NULL)",
        """CREATE TABLE IF NOT EXISTS {s}.locks (
            name text PRIMARY KEY,
            owner text NOT NULL,
            expires double precision NOT NULL
        )""",
        "CREATE TABLE IF NOT EXISTS {s}.revoked "
        "(id text PRIMARY KEY, at double precision NOT NULL)",
        "CREATE SEQUENCE IF NOT EXISTS {s}.message_seq",
        "CREATE TABLE IF NOT EXISTS {s}.done (id text PRIMARY KEY, expires double precision "
        "NOT NULL)",
        "CREATE INDEX IF NOT EXISTS done_expires ON {s}.done (expires)",
    ),
)
#: The version this code reads and writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)


class SchemaError(ImproperlyConfigured):
    """The schema in the database is not one this code can use (newer, or not migrated)."""


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A store URL split into what libpq reads and the schema of the hub's tables."""

    conninfo: str
    schema: str


def is_postgres_url(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL store (``postgresql://`` or ``postgres://``)."""
    return bool(url) and urlsplit(str(url)).scheme in ("postgresql", "postgres")


def parse_store_url(url: str) -> StoreURL:
    """Split off our ``schema`` parameter; a bad URL or schema name is one clear error."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ImproperlyConfigured(
            f"hub_store_url must start with postgresql://, not {parts.scheme or url!r}"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ImproperlyConfigured(
            f"schema {schema!r} in hub_store_url: use lower-case letters, digits and _ "
            "(at most 63, not starting with a digit)"
        )
    return StoreURL(urlunsplit(parts._replace(query=urlencode(kept))), schema)


def describe(conn: psycopg.Connection[Any], schema: str) -> dict[str, object]:
    """What a connection reaches, for logs: host, port, database, user, schema (no password)."""
    info = conn.info
    return {
        "host": info.host,
        "port": info.port,
        "database": info.dbname,
        "user": info.user,
        "schema": schema,
        "server_version": info.server_version,
    }


def _statements(schema: str, texts: tuple[str, ...]) -> list[sql.Composed]:
    return [sql.SQL(text).format(s=sql.Identifier(schema)) for text in texts]


def _current_version(cur: psycopg.Cursor[Any], schema: str) -> int:
    cur.execute("SELECT to_regclass(%s)", (f'"{schema}".schema_version',))
    row = cur.fetchone()
    if row is None or row[0] is None:
        return 0
    cur.execute(
        sql.SQL("SELECT max(version) FROM {s}.schema_version").format(s=sql.Identifier(schema))
    )
    found = cur.fetchone()
    return int(found[0]) if found and found[0] is not None else 0


def prepare_schema(conn: psycopg.Connection[Any], schema: str, *, migrate: bool) -> int:
    """Bring ``schema`` to :data:`SCHEMA_VERSION` as the rules above say; returns the version
    found before (0: none). Commits (the connection is left with no transaction open)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS + 1, schema))
        found = _current_version(cur, schema)
        if found > SCHEMA_VERSION:
            raise SchemaError(
                f"the PostgreSQL schema {schema!r} is at version {found}, newer than this "
                f"celeriac's {SCHEMA_VERSION}: upgrade celeriac (or use another schema)"
            )
        if 0 < found < SCHEMA_VERSION and not migrate:
            raise SchemaError(
                f"the PostgreSQL schema {schema!r} is at version {found}, this celeriac needs "
                f"{SCHEMA_VERSION}: run `celeriac hub --store URL --migrate` once"
            )
        if found == SCHEMA_VERSION:
            return found
        ident = sql.Identifier(schema)
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {s}").format(s=ident))
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)"
            ).format(s=ident)
        )
        for version in range(found, SCHEMA_VERSION):
            for statement in _statements(schema, MIGRATIONS[version]):
                cur.execute(statement)
        cur.execute(sql.SQL("DELETE FROM {s}.schema_version").format(s=ident))
        cur.execute(
            sql.SQL("INSERT INTO {s}.schema_version VALUES (%s)").format(s=ident),
            (SCHEMA_VERSION,),
        )
    return found
