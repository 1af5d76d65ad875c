"""The Celery setting names celeriac refuses, each with the reason shown to the user.

:data:`UNSUPPORTED` is left out on purpose, :data:`PENDING` is not built yet, and
:data:`OLD_NAMES` maps Celery's old upper-case names to the new ones (never accepted, only
explained). :mod:`celeriac._conf_registry` turns them into errors.
"""

from __future__ import annotations

from typing import Final

__all__ = ["OLD_NAMES", "PENDING", "UNSUPPORTED"]


def _prefixed(prefix: str, names: str) -> list[str]:
    return [prefix + name for name in names.split()]


_NO_TRANSPORT = "celeriac speaks only its own ZeroMQ hub; there is no transport to choose or tune"
_NO_BACKEND = (
    "results live in the hub (see result_expires); there is no result backend to configure"
)
_NO_EAGER = (
    "eager mode hides the serialization and routing that break in production; "
    "use celeriac.testing, which runs the real path in-process"
)
_NO_QUEUE_TYPES = "hub queues are all durable and have no AMQP queue types"
_NO_EVENT_QUEUE = "events go out on the hub's PUB socket; there is no event queue"

UNSUPPORTED: dict[str, str] = {
    "broker_transport": _NO_TRANSPORT,
    "broker_transport_options": _NO_TRANSPORT,
    "broker_login_method": (
        "the hub authenticates peers by CURVE keys, not AMQP logins: see "
        "hub_curve_allowed_keys_dir and broker_curve_secret_key_file (celeriac keys generate)"
    ),
    "broker_use_ssl": (
        "links to the hub are encrypted with ZeroMQ CURVE, not TLS: set "
        "broker_curve_server_key_file and broker_curve_secret_key_file"
    ),
    "broker_pool_limit": "each process keeps one socket to the hub; there is no connection pool",
    "broker_native_delayed_delivery_queue_type": "delayed messages always wait at the hub",
    "task_protocol": "celeriac speaks task message protocol 2 only",
    "task_always_eager": _NO_EAGER,
    "task_eager_propagates": _NO_EAGER,
    "task_default_delivery_mode": "every message is stored durably by the hub",
    "task_default_queue_type": _NO_QUEUE_TYPES,
    "task_create_missing_queue_type": _NO_QUEUE_TYPES,
    "worker_detect_quorum_queues": _NO_QUEUE_TYPES,
    "worker_enable_prefetch_count_reduction": "the hub sends work by credit (free slots), "
    "not by an AMQP prefetch count",
    "worker_pool_putlocks": "the hub never sends more tasks than the worker has free slots",
    "worker_consumer": "the worker's consumer is not pluggable",
    "worker_timer": "the timer is an actor and is not pluggable",
    "worker_agent": "celeriac has no pluggable worker agent",
    "event_queue_expires": _NO_EVENT_QUEUE,
    "event_queue_ttl": _NO_EVENT_QUEUE,
    "event_queue_durable": _NO_EVENT_QUEUE,
    "event_queue_exclusive": _NO_EVENT_QUEUE,
    "event_queue_prefix": _NO_EVENT_QUEUE,
    "result_exchange": _NO_BACKEND,
    "result_exchange_type": _NO_BACKEND,
    "result_persistent": _NO_BACKEND,
    "result_backend_transport_options": _NO_BACKEND,
    "cache_backend": _NO_BACKEND,
    "cache_backend_options": _NO_BACKEND,
    "couchbase_backend_settings": _NO_BACKEND,
    "arangodb_backend_settings": _NO_BACKEND,
    "mongodb_backend_settings": _NO_BACKEND,
    "database_engine_options": _NO_BACKEND,
    "database_short_lived_sessions": _NO_BACKEND,
    "database_table_names": _NO_BACKEND,
    **dict.fromkeys(
        [
            *_prefixed("cassandra_", "table entry_ttl keyspace port read_consistency servers"),
            *_prefixed("cassandra_", "write_consistency options"),
            *_prefixed("s3_", "access_key_id secret_access_key bucket base_path endpoint_url"),
            *_prefixed("s3_", "region"),
            *_prefixed("redis_", "db host max_connections username password port"),
            *_prefixed("redis_", "backend_use_ssl"),
        ],
        _NO_BACKEND,
    ),
}
"""Celery settings celeriac deliberately does not support, with the reason (shown to users)."""

PENDING: dict[str, str] = {}
"""Celery settings refused only because their feature is not built yet, with what is missing;
declaring one replaces the refusal (``_settings_table.py`` lists them)."""


def _old(prefix: str, names: str, new_prefix: str) -> dict[str, str]:
    return {f"{prefix}{n}": f"{new_prefix}{n.lower()}" for n in names.split()}


OLD_NAMES: Final[dict[str, str]] = {
    # Celery's "New lowercase settings" table (version 4.0), plus the older spellings it replaced.
    **_old("CELERY_", "ACCEPT_CONTENT ENABLE_UTC IMPORTS INCLUDE TIMEZONE", ""),
    **_old("CELERYBEAT_", "MAX_LOOP_INTERVAL SCHEDULE SCHEDULER SCHEDULE_FILENAME", "beat_"),
    **_old("CELERYBEAT_", "SYNC_EVERY", "beat_"),
    **_old("BROKER_", "URL TRANSPORT TRANSPORT_OPTIONS CONNECTION_TIMEOUT", "broker_"),
    **_old("BROKER_", "CONNECTION_RETRY CONNECTION_MAX_RETRIES FAILOVER_STRATEGY", "broker_"),
    **_old("BROKER_", "HEARTBEAT LOGIN_METHOD POOL_LIMIT USE_SSL", "broker_"),
    **_old("BROKER_", "NATIVE_DELAYED_DELIVERY_QUEUE_TYPE", "broker_"),
    **_old("CELERY_", "CACHE_BACKEND CACHE_BACKEND_OPTIONS", ""),
    "CASSANDRA_COLUMN_FAMILY": "cassandra_table",
    **_old("CASSANDRA_", "ENTRY_TTL KEYSPACE PORT READ_CONSISTENCY SERVERS", "cassandra_"),
    **_old("CASSANDRA_", "WRITE_CONSISTENCY OPTIONS", "cassandra_"),
    **_old("S3_", "ACCESS_KEY_ID SECRET_ACCESS_KEY BUCKET BASE_PATH ENDPOINT_URL REGION", "s3_"),
    **_old("CELERY_", "COUCHBASE_BACKEND_SETTINGS ARANGODB_BACKEND_SETTINGS", ""),
    **_old("CELERY_", "MONGODB_BACKEND_SETTINGS", ""),
    **_old("CELERY_", "EVENT_QUEUE_EXPIRES EVENT_QUEUE_TTL EVENT_QUEUE_DURABLE", ""),
    **_old("CELERY_", "EVENT_QUEUE_EXCLUSIVE EVENT_QUEUE_PREFIX EVENT_SERIALIZER", ""),
    **_old("CELERY_REDIS_", "DB HOST MAX_CONNECTIONS USERNAME PASSWORD PORT", "redis_"),
    **_old("CELERY_REDIS_", "BACKEND_USE_SSL", "redis_"),
    **_old("CELERY_RESULT_", "BACKEND EXCHANGE EXCHANGE_TYPE EXPIRES PERSISTENT", "result_"),
    **_old("CELERY_RESULT_", "SERIALIZER", "result_"),
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_MAX_CACHED_RESULTS": "result_cache_max",
    "CELERY_MESSAGE_COMPRESSION": "result_compression",
    "CELERY_RESULT_DBURI": "result_backend",
    "CELERY_RESULT_ENGINE_OPTIONS": "database_engine_options",
    "CELERY_RESULT_DB_SHORT_LIVED_SESSIONS": "database_short_lived_sessions",
    "CELERY_RESULT_DB_TABLE_NAMES": "database_table_names",
    **_old("CELERY_SECURITY_", "CERTIFICATE CERT_STORE KEY KEY_PASSWORD", "security_"),
    **_old("CELERY_", "ACKS_LATE ACKS_ON_FAILURE_OR_TIMEOUT ANNOTATIONS COMPRESSION", "task_"),
    **_old("CELERY_", "CREATE_MISSING_QUEUES CREATE_MISSING_QUEUE_TYPE", "task_"),
    **_old("CELERY_", "CREATE_MISSING_QUEUE_EXCHANGE_TYPE IGNORE_RESULT", "task_"),
    **_old("CELERY_", "EAGER_PROPAGATES PUBLISH_RETRY PUBLISH_RETRY_POLICY QUEUES", "task_"),
    **_old("CELERY_", "ROUTES SEND_SENT_EVENT TRACK_STARTED ALWAYS_EAGER", "task_"),
    **_old("CELERY_", "ALLOW_ERROR_CB_ON_CHORD_HEADER", "task_"),
    **_old("CELERY_TASK_", "ALWAYS_EAGER SERIALIZER TRACK_STARTED PUBLISH_RETRY", "task_"),
    **_old("CELERY_TASK_", "PUBLISH_RETRY_POLICY REJECT_ON_WORKER_LOST", "task_"),
    **_old("CELERY_DEFAULT_", "DELIVERY_MODE EXCHANGE EXCHANGE_TYPE QUEUE", "task_default_"),
    **_old("CELERY_DEFAULT_", "QUEUE_TYPE RATE_LIMIT ROUTING_KEY", "task_default_"),
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_SEND_TASK_SENT_EVENT": "task_send_sent_event",
    **_old("CELERYD_", "SOFT_TIME_LIMIT TIME_LIMIT", "task_"),
    **_old("CELERYD_TASK_", "SOFT_TIME_LIMIT TIME_LIMIT", "task_"),
    **_old("CELERYD_", "AGENT AUTOSCALER CONCURRENCY CONSUMER HIJACK_ROOT_LOGGER", "worker_"),
    **_old("CELERYD_", "LOG_COLOR LOG_FORMAT MAX_TASKS_PER_CHILD MAX_MEMORY_PER_CHILD", "worker_"),
    **_old("CELERYD_", "POOL POOL_PUTLOCKS POOL_RESTARTS PREFETCH_MULTIPLIER", "worker_"),
    **_old("CELERYD_", "ETA_TASK_LIMIT ENABLE_PREFETCH_COUNT_REDUCTION", "worker_"),
    **_old("CELERYD_", "REDIRECT_STDOUTS REDIRECT_STDOUTS_LEVEL STATE_DB", "worker_"),
    **_old("CELERYD_", "TASK_LOG_FORMAT TIMER TIMER_PRECISION DETECT_QUORUM_QUEUES", "worker_"),
    "CELERYD_WORKER_LOST_WAIT": "worker_lost_wait",
    **_old("CELERY_", "REDIRECT_STDOUTS REDIRECT_STDOUTS_LEVEL", "worker_"),
    **_old("CELERY_WORKER_", "DIRECT LOG_FORMAT TASK_LOG_FORMAT", "worker_"),
    **_old("CELERY_", "DISABLE_RATE_LIMITS ENABLE_REMOTE_CONTROL", "worker_"),
    "CELERY_SEND_EVENTS": "worker_send_task_events",
}
"""Celery's old upper-case setting names and their new names (never accepted, only explained)."""
