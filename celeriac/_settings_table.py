"""Celery's remaining settings: each one accepted with its meaning here, or refused with why.

Every one of Celery's settings (:data:`celeriac._celery_names.SETTINGS`) is in exactly one of:

- **honoured**: declared by the component that acts on it (``_conf.py``, ``_keyed.py``...);
- **accepted as a no-op** (:data:`ACCEPTED_NO_OP`): declared here because what Celery lets
  you choose is what celeriac always does (``worker_eta_task_limit``: ETA tasks wait at the
  hub, never in worker memory). A value that would ask for something else is refused by the
  setting's check, with the reason: nothing is accepted and then ignored;
- **refused** (:data:`~celeriac._conf.UNSUPPORTED`): an error whose message says why and what
  to do instead; or **pending** (:data:`~celeriac._conf.PENDING`): refused the same way as
  "not implemented yet" because another issue builds the feature (none is pending today);
  declaring one later replaces the refusal.

``tests/unit/test_settings_table.py`` holds this classification complete.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ._conf import PENDING, REGISTRY, UNSUPPORTED, declare, parse_seconds, seconds_check
from .exceptions import ImproperlyConfigured

__all__ = ["ACCEPTED_NO_OP", "only"]

ACCEPTED_NO_OP: set[str] = set()
"""Celery settings accepted because celeriac always behaves as they ask (see each doc)."""


def only(name: str, allowed: object, reason: str) -> Callable[[Any], Any]:
    """A check accepting only ``allowed`` (what celeriac always does); else the reason."""

    def check(value: Any) -> Any:
        if value == allowed and type(value) is type(allowed):
            return value
        raise ImproperlyConfigured(
            f"setting {name!r} can only be {allowed!r} in celeriac, got {value!r}: {reason}"
        )

    return check


def _no_op(name: str, default: Any, doc: str, *, allowed: object = None) -> None:
    """Declare a Celery setting celeriac accepts because it always behaves that way."""
    check = only(name, allowed, doc) if allowed is not None else None
    declare(name, default, f"Accepted for Celery compatibility, no effect: {doc}", check=check)
    ACCEPTED_NO_OP.add(name)


# -- accepted: celeriac always does what these ask ---------------------------------------------

declare(
    "worker_send_task_events",
    False,
    "Workers send Celery's task events (task-received, task-started, task-succeeded with runtime "
    "and result, task-failed with exception and traceback...) through the hub (`celeriac worker "
    "-E`, or `celeriac control enable_events` at run time). The hub publishes its own "
    "task-started/-succeeded/-failed events (id and state) whatever this says.",
)
declare(
    "task_send_sent_event",
    False,
    "Clients send a task-sent event for each publish (through the hub, on its event stream).",
)
_no_op(
    "worker_eta_task_limit",
    None,
    "ETA and countdown tasks wait at the hub, never in a worker's memory, so there is no limit "
    "to set",
)
_RECONNECTS = (
    "clients and workers always reconnect to the hub, and a worker started before its hub "
    "waits for it (waiting_for_hub in the log)"
)
_no_op("broker_connection_retry", True, _RECONNECTS, allowed=True)
_no_op("broker_connection_retry_on_startup", True, _RECONNECTS, allowed=True)
_no_op("broker_channel_error_retry", False, "there are no AMQP channels to retry")
_no_op(
    "broker_heartbeat_checkrate",
    2.0,
    "the hub checks heartbeats every loop turn; broker_heartbeat sets their interval",
)
_no_op(
    "task_publish_retry",
    True,
    "publishes are always confirmed by the hub and resent after a reconnect (the hub drops "
    "duplicates by task id); app.flush(timeout) waits for the confirmations",
    allowed=True,
)
_no_op(
    "task_acks_on_failure_or_timeout",
    True,
    "a task that raised or timed out is acknowledged with state FAILURE; raise "
    "celeriac.exceptions.Reject(requeue=True) to give a message back instead",
    allowed=True,
)
_no_op(
    "task_remote_tracebacks",
    True,
    "a failed task's exception, re-raised by AsyncResult.get(), always carries the remote "
    "traceback as an exception note",
    allowed=True,
)
_no_op(
    "worker_lost_wait",
    10.0,
    "the prefork parent learns at once that a child died (its pipe closes); no wait applies",
)

# -- refused: what to use instead --------------------------------------------------------------

_NO_BACKEND: Final = (
    "results live in the hub (see result_expires); there is no result backend to configure"
)
_ONE_URL: Final = (
    "celeriac reads and writes through the hub named by broker_url: set broker_url = "
    "'tcp://host:port' (or several hubs for failover: 'tcp://h1:5555;tcp://h2:5555'; a "
    "standalone `celeriac hub` serves many machines)"
)
_NO_CONTROL_QUEUES: Final = (
    "remote control goes through the hub's own sockets; there are no control queues or "
    "exchange to configure (use `celeriac inspect` / `celeriac control`)"
)
_LOGGING: Final = (
    "worker logs are structlog records: choose --log-format json|console (and --loglevel); "
    "connect to the setup_logging / after_setup_logger signals to change them further"
)
_SHUTDOWN: Final = (
    "a warm shutdown lets running tasks finish for worker_shutdown_timeout seconds, then hands "
    "the rest back to the hub for redelivery"
)


def _refuse(reason: str, names: str) -> None:
    UNSUPPORTED.update(dict.fromkeys(names.split(), reason))


_refuse(
    _NO_BACKEND,
    """
    azureblockblob_base_path azureblockblob_connection_timeout azureblockblob_container_name
    azureblockblob_read_timeout azureblockblob_retry_increment_base
    azureblockblob_retry_initial_backoff_sec azureblockblob_retry_max_attempts
    cassandra_auth_kwargs cassandra_auth_provider cassandra_bundle_path
    cosmosdbsql_collection_name cosmosdbsql_consistency_level cosmosdbsql_database_name
    cosmosdbsql_max_retry_attempts cosmosdbsql_max_retry_wait_time
    database_create_tables_at_setup database_engine_callback database_table_schemas database_url
    elasticsearch_max_retries elasticsearch_retry_on_timeout elasticsearch_save_meta_as_text
    elasticsearch_timeout gcs_base_path gcs_bucket gcs_project gcs_ttl
    redis_retry_on_timeout redis_socket_connect_timeout redis_socket_keepalive
    redis_socket_timeout result_backend_always_retry result_backend_base_sleep_between_retries_ms
    result_backend_max_retries result_backend_max_sleep_between_retries_ms
    """,
)
_refuse(_ONE_URL, "broker_host broker_port broker_user broker_password broker_vhost")
_refuse(_ONE_URL, "broker_read_url broker_write_url")
_refuse(
    "each process keeps one socket to the hub; there is no connection pool",
    "broker_pool_acquire_timeout",
)
_refuse(
    "clients and workers retry for ever; bound a wait with get(timeout=) or flush(timeout=)",
    "broker_connection_max_retries",
)
_refuse(
    _NO_CONTROL_QUEUES,
    "control_exchange control_queue_durable control_queue_exclusive control_queue_expires "
    "control_queue_ttl worker_enable_remote_control",
)
_refuse(
    "beat is one at a time by a lease at the hub; beat has no remote control",
    "beat_enable_remote_control beat_remote_control_max_tick_age",
)
_refuse("events go out on the hub's PUB socket; there is no event exchange", "event_exchange")
_refuse("events are always encoded with msgpack by the hub", "event_serializer")
_refuse(
    "each AsyncResult keeps its own outcome once known; there is no app-wide result cache",
    "result_cache_max",
)
_refuse(
    "every message is confirmed by the hub and resent after a reconnect; there is no retry "
    "policy to tune (task_publish_retry is always on)",
    "task_publish_retry_policy",
)
_refuse(
    "message signing is not supported; the hub authenticates peers with ZeroMQ CURVE keys",
    "security_cert_store security_certificate security_digest security_key security_key_password",
)
_refuse(
    "a task that raised is acknowledged with state FAILURE (task_acks_on_failure_or_timeout); "
    "raise celeriac.exceptions.Reject(requeue=True) to give the message back",
    "task_acks_on_failure task_acks_on_timeout",
)
_refuse(
    "queues created on the fly are bound to task_default_exchange with their own name",
    "task_create_missing_queue_exchange_type",
)
_refuse(
    "a worker lost mid-task: see task_reject_on_worker_lost and broker_max_deliveries",
    "task_retry_on_worker_lost",
)
_refuse(
    "eager mode hides the serialization and routing that break in production; use "
    "celeriac.testing, which runs the real path in-process",
    "task_store_eager_result",
)
_refuse(
    "task arguments are logged as structured fields, not as a truncated repr",
    "task_repr_maxlevels",
)
_refuse(_LOGGING, "worker_log_color worker_log_datefmt worker_log_format")
_refuse(_LOGGING, "worker_task_log_datefmt worker_task_log_format worker_hijack_root_logger")
_refuse(
    "print() output of tasks is not redirected into the log; log with get_task_logger(__name__)",
    "worker_redirect_stdouts worker_redirect_stdouts_level",
)
_refuse(_SHUTDOWN, "worker_enable_soft_shutdown_on_idle worker_soft_shutdown_timeout")
_refuse(
    "the hub never sends a worker more than its free slots, and prefetched messages go back "
    "after worker_prefetch_giveback; set worker_prefetch_multiplier = 1 and "
    "worker_prefetch_window = 0 for the least prefetch",
    "worker_disable_prefetch",
)
_refuse(
    "prefork children always start with forkserver (a ZeroMQ context must not cross a fork)",
    "worker_pool_start_method",
)
_refuse(
    "the prefork parent restarts children by itself; a remote pool restart is not implemented",
    "worker_pool_restarts worker_proc_alive_timeout",
)
_refuse("revoked task ids are kept durably by the hub; there is no state file", "worker_state_db")
_refuse("the timer is an actor and is not tunable", "worker_timer_precision")
_refuse(
    "--autoscale MAX,MIN is built in (worker_autoscale_*); it is not pluggable", "worker_autoscaler"
)
_refuse(
    "the hub redelivers what a lost worker had not acknowledged; running tasks are not "
    "cancelled on a connection loss",
    "worker_cancel_long_running_tasks_on_connection_loss",
)
_refuse(
    "the hub drops duplicate publishes by task id; successful redeliveries are not "
    "deduplicated against stored results",
    "worker_deduplicate_successful_tasks",
)
_refuse(
    "use a Broadcast queue, or a queue named after the node with -Q",
    "worker_direct",
)

# -- chords: counted at the hub ---------------------------------------------------------------

_CHORDS_AT_HUB: Final = (
    "chords are counted at the hub: it releases the chord's unlock the moment the last header "
    "task ends, and deletes the counter when the unlock is done"
)
declare(
    "result_chord_join_timeout",
    30.0,
    "Seconds, in all, a chord's unlock waits to read its header's results from the hub "
    "(they are stored before the unlock runs, so this only bounds a slow hub; Celery's "
    "default is 3.0, a backend join). Past it the unlock fails and the body does not run.",
    parse=parse_seconds,
    check=seconds_check("result_chord_join_timeout", positive=True),
)
declare(
    "task_allow_error_cb_on_chord_header",
    False,
    "A chord's errbacks (chord(...).link_error / on_error) are also linked to every header "
    "task (called without arguments when that task fails), not only to the body.",
)
_no_op(
    "result_chord_retry_interval",
    1.0,
    f"{_CHORDS_AT_HUB}; nothing polls, so there is no interval to set",
)
_no_op(
    "result_chord_expires",
    None,
    f"{_CHORDS_AT_HUB}; there is no counter left to expire",
)


# -- not implemented yet: declaring them later (another issue) replaces the refusal --------------

_PENDING: Final[dict[str, str]] = {}
PENDING.update((name, what) for name, what in _PENDING.items() if name not in REGISTRY)
