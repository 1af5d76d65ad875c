"""The SQL of the shared store (:mod:`.store_pg_shared`), one statement per key.

``{s}`` is the quoted schema, ``{now}`` the server's clock, ``{tx_now}`` the transaction's
start (stable: an index can serve a comparison with it), ``{arrays}`` the seven message
columns as arrays for ``unnest``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SHARED_SQL", "shared_sql"]

_NOW: Final = "extract(epoch FROM clock_timestamp())::float8"
#: The transaction's start (stable, unlike clock_timestamp(): an index can serve a comparison
#: with it, so the sweeps never read the delayed rows that are not due).
_TX_NOW: Final = "extract(epoch FROM now())::float8"
_ARRAYS: Final = (
    "%b::text[], %b::text[], %b::integer[], %b::float8[], %b::bigint[], %b::bytea[], %b::bytea[]"
)
SHARED_SQL: Final = {
    "pub": "INSERT INTO {s}.messages (id, queue, priority, eta, seq, header, body, owner) "
    "SELECT id, queue, priority, CASE WHEN eta <= {now} THEN NULL ELSE eta END, "
    "nextval('{s}.message_seq'), header, body, owner "
    "FROM unnest({arrays}, %b::text[]) AS u(id, queue, priority, eta, seq, header, body, owner) "
    "ON CONFLICT (id) DO NOTHING",
    "put": "INSERT INTO {s}.messages (id, queue, priority, eta, seq, header, body, owner, "
    "lease_until) SELECT u.*, %s, {now} + %s FROM unnest({arrays}) AS u "
    "ON CONFLICT (id) DO UPDATE SET queue = EXCLUDED.queue, priority = EXCLUDED.priority, "
    "eta = EXCLUDED.eta, seq = EXCLUDED.seq, header = EXCLUDED.header, body = EXCLUDED.body, "
    "owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until",
    "del": "DELETE FROM {s}.messages WHERE id = ANY(%s::text[])",
    "release": "UPDATE {s}.messages m SET owner = NULL, lease_until = NULL, deliveries = u.d, "
    "lost = u.l, eta = CASE WHEN m.eta <= {now} THEN NULL ELSE m.eta END "
    "FROM unnest(%b::text[], %b::integer[], %b::integer[]) AS u(id, d, l) "
    "WHERE m.id = u.id AND m.owner = %s",
    "claim": "WITH want AS (SELECT * FROM unnest(%s::text[], %s::integer[]) AS w(queue, n)), "
    "picked AS (SELECT c.id FROM want CROSS JOIN LATERAL (SELECT id FROM {s}.messages "
    "WHERE queue = want.queue AND owner IS NULL AND eta IS NULL ORDER BY priority DESC, seq "
    "LIMIT want.n FOR UPDATE SKIP LOCKED) c) "
    "UPDATE {s}.messages m SET owner = %s, lease_until = {now} + %s FROM picked "
    "WHERE m.id = picked.id RETURNING m.id, m.queue, m.priority, m.eta, m.seq, m.header, "
    "m.body, m.deliveries, m.lost",
    "adopt": "UPDATE {s}.messages m SET owner = %s, lease_until = {now} + %s WHERE m.id IN ("
    "SELECT id FROM {s}.messages WHERE id = ANY(%s::text[]) AND owner IS DISTINCT FROM '~chord' "
    "FOR UPDATE SKIP LOCKED) RETURNING m.id, m.queue, m.priority, m.eta, m.seq, m.header, "
    "m.body, m.deliveries, m.lost",
    "seen": "INSERT INTO {s}.hubs VALUES (%s, {now}, {now}) "
    "ON CONFLICT (hub_id) DO UPDATE SET seen_at = EXCLUDED.seen_at",
    "reap": "UPDATE {s}.messages m SET owner = NULL, lease_until = NULL WHERE m.id IN ("
    "SELECT id FROM {s}.messages x WHERE x.owner IS NOT NULL AND x.lease_until < {tx_now} "
    "AND NOT EXISTS (SELECT 1 FROM {s}.hubs h WHERE h.hub_id = x.owner "
    "AND h.seen_at >= {now} - %s) LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING m.queue, m.owner",
    "promote": "UPDATE {s}.messages SET eta = NULL WHERE id IN (SELECT id FROM {s}.messages "
    "WHERE owner IS NULL AND eta IS NOT NULL AND eta <= {tx_now} LIMIT %s FOR UPDATE SKIP LOCKED) "
    "RETURNING queue",
    "forget_hubs": "DELETE FROM {s}.hubs WHERE seen_at < {now} - %s",
    "hubs": "SELECT hub_id, {now} - seen_at FROM {s}.hubs ORDER BY started_at",
    "leave": "DELETE FROM {s}.hubs WHERE hub_id = %s",
    "leave_keys": "DELETE FROM {s}.locks WHERE owner = %s AND name LIKE '~actor:%%'",
    "leave_rows": "UPDATE {s}.messages SET owner = NULL, lease_until = NULL WHERE owner = %s",
    "seq_floor": "SELECT setval('{s}.message_seq', GREATEST((SELECT last_value FROM "
    "{s}.message_seq), (SELECT coalesce(max(seq), 1) FROM {s}.messages)))",
    "lengths": "SELECT queue, count(*) FILTER (WHERE owner IS NULL AND eta IS NULL), "
    "count(*) FILTER (WHERE owner IS NULL AND eta IS NOT NULL), "
    "count(*) FILTER (WHERE owner IS NOT NULL AND owner <> '~chord') "
    "FROM {s}.messages GROUP BY queue",
    "purge_all": "DELETE FROM {s}.messages WHERE owner IS NULL RETURNING queue",
    "purge": "DELETE FROM {s}.messages WHERE owner IS NULL AND queue = ANY(%s::text[]) "
    "RETURNING queue",
    "strays": "UPDATE {s}.messages SET owner = NULL, lease_until = NULL WHERE owner = %s "
    "AND NOT (id = ANY(%s::text[])) RETURNING queue",
    "notify": "SELECT pg_notify(%s, %s)",
    "results_among": "SELECT id FROM {s}.results WHERE id = ANY(%s::text[]) UNION ALL "
    "SELECT id FROM {s}.done WHERE id = ANY(%s::text[]) AND expires > {now}",
    "tombstones": "INSERT INTO {s}.done SELECT i, {now} + %s FROM unnest(%s::text[]) AS i "
    "ON CONFLICT (id) DO NOTHING",
    "forget_done": "DELETE FROM {s}.done WHERE id IN (SELECT id FROM {s}.done "
    "WHERE expires < {tx_now} LIMIT %s)",
    "results_of": "SELECT id, state, header, body FROM {s}.results WHERE id = ANY(%s::text[])",
    "chord_open": "INSERT INTO {s}.chords VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
    "chord_down_row": "WITH d AS (DELETE FROM {s}.messages WHERE id = %s RETURNING 1) "
    "UPDATE {s}.chords SET remaining = remaining - 1 WHERE id = %s "
    "AND EXISTS (SELECT 1 FROM d) RETURNING remaining",
    "chord_down": "UPDATE {s}.chords SET remaining = remaining - 1 WHERE id = %s "
    "RETURNING remaining",
    "chord_drop": "DELETE FROM {s}.chords WHERE id = %s",
    "unhold": "UPDATE {s}.messages SET owner = NULL WHERE id = %s AND owner = %s RETURNING queue",
    "lock": "INSERT INTO {s}.locks AS l VALUES (%s, %s, {now} + %s) ON CONFLICT (name) "
    "DO UPDATE SET owner = EXCLUDED.owner, expires = EXCLUDED.expires "
    "WHERE l.owner = EXCLUDED.owner OR l.expires <= {now} RETURNING 1",
    "unlock": "DELETE FROM {s}.locks WHERE name = %s AND owner = %s AND expires > {now} "
    "RETURNING 1",
    "lock_owner": "SELECT owner FROM {s}.locks WHERE name = %s AND expires > {now}",
    "locks_extend": "UPDATE {s}.locks SET expires = {now} + %s WHERE owner = %s "
    "AND name = ANY(%s::text[]) RETURNING name",
    "forget_locks": "DELETE FROM {s}.locks WHERE expires < {now} - 60",
    "revoke": "INSERT INTO {s}.revoked SELECT i, {now} FROM unnest(%s::text[]) AS i "
    "ON CONFLICT (id) DO NOTHING",
    "revoke_queued": "DELETE FROM {s}.messages WHERE id = ANY(%s::text[]) AND owner IS NULL "
    "RETURNING id",
    "revoked": "SELECT id, at FROM {s}.revoked ORDER BY at DESC LIMIT %s",
    "meta_row": "INSERT INTO {s}.meta VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
    "meta_locked": "SELECT value FROM {s}.meta WHERE key = %s FOR UPDATE",
}


def shared_sql(schema: str) -> dict[str, str]:
    """Every statement for the (validated, lower-case) ``schema``."""
    quoted = '"' + schema + '"'
    return {
        k: v.format(s=quoted, now=_NOW, tx_now=_TX_NOW, arrays=_ARRAYS)
        for k, v in SHARED_SQL.items()
    }
