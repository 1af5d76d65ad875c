"""The settings: :func:`declare`, the core's own declarations, and the registry's face.

Every setting is declared once, by the component that owns it (this module declares the core's;
``_routing_settings.py``, ``_hub_settings.py``... their own). The machinery lives in sibling
modules and is re-exported here, so one import gives the registry with the core's settings:

- :mod:`celeriac._conf_parse`: parsers (environment strings -> values) and checks;
- :mod:`celeriac._conf_registry`: :class:`Setting`, :data:`REGISTRY`, unknown-name errors;
- :mod:`celeriac._conf_refused`: the Celery names refused, with their reasons;
- :mod:`celeriac._conf_settings`: :class:`Settings`, one app's effective values (precedence:
  default < ``CELERIAC_*`` environment < explicit), frozen once the app runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

from celeriac._compression import check_compression
from celeriac._conf_declare import declare
from celeriac._conf_parse import (
    choice_check,
    int_check,
    parse_bool,
    parse_float,
    parse_int,
    parse_list,
    parse_optional,
    parse_seconds,
    seconds_check,
    str_list_check,
    to_seconds,
)
from celeriac._conf_refused import PENDING, UNSUPPORTED
from celeriac._conf_registry import (
    ENV_PREFIX,
    ENVIRON_EXEMPT,
    REGISTRY,
    Setting,
    UnsupportedSettingError,
)
from celeriac._conf_settings import Settings
from celeriac._hub_urls import check_broker_url, check_failover_strategy
from celeriac._limits import check_annotations, check_rate, parse_annotations
from celeriac._task_compat import check_acks_late_setting
from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "ENVIRON_EXEMPT",
    "ENV_PREFIX",
    "HUB_SYNC_MODES",
    "PENDING",
    "REGISTRY",
    "UNSUPPORTED",
    "WORKER_POOLS",
    "Setting",
    "Settings",
    "UnsupportedSettingError",
    "choice_check",
    "declare",
    "int_check",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_list",
    "parse_optional",
    "parse_seconds",
    "seconds_check",
    "str_list_check",
    "to_seconds",
]

# -- the core settings -------------------------------------------------------------------------

WORKER_POOLS: tuple[str, ...] = ("threads", "solo", "prefork", "asyncio")
"""The ``worker_pool`` values accepted; a pool implementation adds its name here."""

HUB_SYNC_MODES: Final = ("normal", "full")
EMBEDDED_HUB_MODES: Final = ("auto", "always", "never")


def _check_embedded_hub(value: Any) -> str:
    if value is True or value is False:
        return "always" if value else "never"
    if isinstance(value, str):
        word = value.strip().lower()
        word = {"true": "always", "yes": "always", "false": "never", "no": "never"}.get(word, word)
        if word in EMBEDDED_HUB_MODES:
            return word
    raise ImproperlyConfigured(
        "setting 'worker_embedded_hub' must be one of auto, always, never (or True/False); "
        f"got {value!r}"
    )


def _check_result_backend(value: Any) -> str | None:
    if value is None or value == "hub":
        return value  # type: ignore[no-any-return]
    raise ImproperlyConfigured(
        f"result_backend={value!r} is not supported: celeriac keeps results in its hub, which "
        "expires them after result_expires; leave result_backend unset (or set it to 'hub')"
    )


def _check_path(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise ImproperlyConfigured(f"setting 'hub_data_dir' must be a path or None, got {value!r}")


def _check_store_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.partition("://")[0] in ("postgresql", "postgres"):
        return value
    raise ImproperlyConfigured(
        "setting 'hub_store_url' must be a PostgreSQL URL (postgresql://user@host/dbname) or "
        f"None, got {value!r}"
    )


def _check_non_empty(name: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip():
            return value.strip()
        raise ImproperlyConfigured(f"setting {name!r} must be a non-empty string, got {value!r}")

    return check


_parse_seconds_or_none = parse_optional(parse_seconds)

declare(
    "broker_url",
    "tcp://127.0.0.1:5555",
    "Address of the hub: tcp://host:port, ipc:///path or inproc://name; several hubs as "
    "'tcp://h1:5555;tcp://h2:5555' or a list (failover: a peer talks to one, moves to the "
    "next when it is lost).",
    check=check_broker_url,
)
declare(
    "broker_failover_strategy",
    "round-robin",
    "Order in which a peer tries the hubs listed in broker_url: round-robin (the first, then "
    "the next), shuffle (random each round: spreads peers over the hubs) or a callable given "
    "the list of addresses that returns an iterator of them.",
    check=check_failover_strategy,
)
declare(
    "result_backend",
    None,
    "Where results are kept: only the hub (None or 'hub'); other backends are not supported.",
    parse=parse_optional(str),
    check=_check_result_backend,
)
declare("task_serializer", "json", "Serializer for task messages: json, msgpack, pickle, yaml.")
declare("result_serializer", "json", "Serializer for task results: json, msgpack, pickle, yaml.")
declare(
    "task_compression",
    None,
    "Compress task message bodies: gzip, zlib, bzip2 or lzma (None: not compressed); "
    "apply_async(compression=...) overrides it. The compression travels in the message's "
    "content type, so any worker decompresses.",
    parse=parse_optional(str),
    check=lambda v: check_compression(v, "task_compression"),
)
declare(
    "result_compression",
    None,
    "Compress task results (and failures) as workers store them: gzip, zlib, bzip2 or lzma "
    "(None: not compressed). Clients decompress whatever the result says.",
    parse=parse_optional(str),
    check=lambda v: check_compression(v, "result_compression"),
)
declare(
    "accept_content",
    ["json"],
    "Serializer names or content types a worker accepts in task messages.",
    check=str_list_check("accept_content"),
)
declare(
    "result_accept_content",
    None,
    "Serializer names or content types accepted for results (None: same as accept_content).",
    parse=parse_optional(parse_list),
    check=str_list_check("result_accept_content", optional=True),
)
declare("task_ignore_result", False, "Do not store task results unless a task asks to.")
declare(
    "result_expires",
    86400.0,
    "Seconds (or a timedelta) the hub keeps a result; None keeps results forever.",
    parse=_parse_seconds_or_none,
    check=seconds_check("result_expires", optional=True),
)
declare(
    "result_failure_expires",
    None,
    "Seconds (or a timedelta) the hub keeps the result of a FAILED task (None: as "
    "result_expires). Keep failures longer to investigate them, or shorter to shed them.",
    parse=_parse_seconds_or_none,
    check=seconds_check("result_failure_expires", optional=True),
)
declare(
    "worker_concurrency",
    None,
    "Task slots per worker node (None: os.cpu_count()).",
    parse=parse_optional(parse_int),
    check=int_check("worker_concurrency", minimum=1, optional=True),
)
declare(
    "worker_pool",
    "threads",
    "How a worker runs tasks: one of WORKER_POOLS (threads: N slots in threads of one process; "
    "solo: one slot; prefork: N child processes, for CPU-bound tasks and hard time limits; "
    "asyncio: async def tasks on one event loop, N at a time, sync tasks in threads).",
    check=choice_check("worker_pool", lambda: WORKER_POOLS),
)
declare(
    "worker_prefetch_multiplier",
    2,
    "Messages a worker holds per task slot at least (an integer, 1 or more; more while its "
    "tasks are quick, see worker_prefetch_window); see worker_prefetch_giveback for why a "
    "long task does not hold the extra ones back.",
    check=int_check("worker_prefetch_multiplier", minimum=1),
)
declare(
    "worker_prefetch_window",
    0.01,
    "Seconds of work a worker may hold per task slot beyond worker_prefetch_multiplier, "
    "judged by its tasks' recent run times: quick tasks are prefetched up to 128 a slot, so "
    "they cross the hub in batches (about twice the throughput for tasks under a millisecond); "
    "slow ones keep worker_prefetch_multiplier. 0: always worker_prefetch_multiplier "
    "(Celery's fixed prefetch).",
    parse=parse_seconds,
    check=seconds_check("worker_prefetch_window"),
)
declare(
    "worker_prefetch_giveback",
    0.1,
    "Seconds prefetched messages may wait behind busy slots before the worker hands them "
    "back to the hub for another worker (celeriac's answer to Celery's prefetch complaint).",
    parse=parse_seconds,
    check=seconds_check("worker_prefetch_giveback"),
)
declare(
    "hub_events_url",
    None,
    "Where the hub publishes events (worker-online/offline, task-started/succeeded/failed...) on "
    "a PUB socket; None: the broker port + 1 (tcp) or <path>.events (ipc).",
    parse=parse_optional(str),
)
declare(
    "worker_shutdown_timeout",
    60.0,
    "Seconds a warm shutdown waits for running tasks; then they are handed back for redelivery.",
    parse=parse_seconds,
    check=seconds_check("worker_shutdown_timeout"),
)
declare(
    "task_default_queue",
    "celery",
    "Queue for tasks that name no queue and match no route.",
    check=_check_non_empty("task_default_queue"),
)
declare(
    "task_acks_late",
    True,
    "Acknowledge a task after it finishes (at-least-once delivery); False is refused.",
    check=check_acks_late_setting,
)
declare(
    "result_extended",
    False,
    "Keep each task's request (name, args, kwargs, worker, queue, retries, date_done) beside "
    "its result, for AsyncResult.name, .args... (stored by the hub with the result).",
)
declare(
    "task_store_errors_even_if_ignored",
    False,
    "Store the FAILURE of tasks whose results are ignored (ignore_result), so their errors can "
    "still be read with AsyncResult.",
)
declare("task_track_started", False, "Report the STARTED state when a worker begins a task.")
declare(
    "task_time_limit",
    None,
    "Hard time limit in seconds of every task (None: none); a task's time_limit option and "
    "apply_async(time_limit=) win. The task fails with TimeLimitExceeded; prefork kills its "
    "process, threads/asyncio can only interrupt Python code (an exception, a cancellation).",
    parse=_parse_seconds_or_none,
    check=seconds_check("task_time_limit", optional=True),
)
declare(
    "task_soft_time_limit",
    None,
    "Soft time limit in seconds of every task (None: none): SoftTimeLimitExceeded is raised "
    "inside the task (asyncio.CancelledError in a coroutine), which may catch it to clean up.",
    parse=_parse_seconds_or_none,
    check=seconds_check("task_soft_time_limit", optional=True),
)
declare(
    "task_default_rate_limit",
    None,
    "Rate limit of every task type that sets none, per worker node: '10/s', '100/m', '1000/h' "
    "or a number per second (None: no limit). A task's rate_limit option and task_annotations "
    "win. A delivery waiting for its rate holds no execution slot.",
    check=check_rate,
)
declare(
    "task_annotations",
    None,
    "Celery's task annotations, for rate_limit and max_concurrency: "
    "{'tasks.add': {'rate_limit': '10/s'}}, {'*': {...}} for every task, objects with "
    "annotate(task), or a list of these (first match wins; a task's own name wins over '*').",
    parse=parse_annotations,
    check=check_annotations,
)
declare(
    "worker_disable_rate_limits",
    False,
    "Ignore every rate limit on this worker (max_concurrency caps still apply).",
)
declare(
    "broker_heartbeat",
    2.0,
    "Seconds between heartbeats to the hub; a peer missing 3 in a row is declared dead.",
    parse=parse_seconds,
    check=seconds_check("broker_heartbeat", positive=True),
)
declare(
    "broker_connection_timeout",
    4.0,
    "Seconds to wait for the hub to answer when connecting.",
    parse=parse_seconds,
    check=seconds_check("broker_connection_timeout", positive=True),
)
declare(
    "hub_data_dir",
    None,
    "Directory of the hub's durable store (None: $XDG_STATE_HOME/celeriac/hub-<host>-<port>, "
    "i.e. ~/.local/state/celeriac/hub-127.0.0.1-5555 by default: one per hub address, the same "
    "whatever the current directory).",
    parse=parse_optional(str),
    check=_check_path,
)
declare(
    "hub_store_url",
    None,
    "Where a hub keeps its durable store instead of SQLite in hub_data_dir: a PostgreSQL URL, "
    "postgresql://user@host:5432/dbname (optionally ?schema=NAME, default celeriac: the "
    "PostgreSQL schema of the hub's tables; one hub per schema). Needs "
    "pip install 'celeriac[postgres]'. The hub creates its tables on first start; "
    "celeriac hub --migrate upgrades them. None: SQLite.",
    parse=parse_optional(str),
    check=_check_store_url,
)
declare(
    "hub_store_shared",
    False,
    "With hub_store_url: this hub shares the PostgreSQL schema with other hubs started the same "
    "way (celeriac hub --shared): the queues are the table, any hub's workers take any hub's "
    "tasks, and a dead hub's tasks are taken back by the others. False: one hub per schema.",
)
declare(
    "hub_shared_lease_ttl",
    10.0,
    "With hub_store_shared: seconds a shared hub may go unseen before the other hubs take back "
    "the tasks it claimed (they run again through them). Longer: fewer false takeovers on a "
    "stalled hub; shorter: a dead hub's tasks resume sooner. Give every hub of a schema the "
    "same value; it must be at least twice hub_shared_beat_interval.",
    check=seconds_check("hub_shared_lease_ttl", positive=True),
)
declare(
    "hub_shared_beat_interval",
    1.0,
    "With hub_store_shared: seconds between two beats of a shared hub (it says it lives, takes "
    "back dead hubs' tasks, makes due delayed tasks ready, checks its waiters' results). "
    "A delayed task becomes due within this long of its eta.",
    check=seconds_check("hub_shared_beat_interval", positive=True),
)
declare(
    "hub_sync",
    "normal",
    "SQLite synchronous mode: normal survives a process kill, full also survives power loss. "
    "With hub_store_url (PostgreSQL): normal commits with synchronous_commit=off, full with on.",
    check=choice_check("hub_sync", lambda: HUB_SYNC_MODES),
)
declare(
    "worker_embedded_hub",
    "auto",
    "Whether a worker runs the hub in its own process: auto (only when no broker_url is "
    "configured and nobody listens on the default loopback address: the one-machine start), "
    "always (this worker is the hub and binds broker_url), never (connect to broker_url and "
    "wait for the hub there).",
    check=_check_embedded_hub,
)
declare("imports", [], "Modules a worker imports at start (comma-separated in the environment).")
declare("include", [], "More modules a worker imports at start, after imports.")

# The settings of beat and of the prefork pool, declared after these (the registry keeps order).
from celeriac import _conf_beat_pool  # noqa: E402, F401
