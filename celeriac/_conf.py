"""The settings: :func:`declare`, the core's own declarations, and the registry's face.

Every setting is declared once, by the component that owns it (this module declares the core's,
with :mod:`celeriac._conf_hub` (the hub's store, the embedded hub) and
:mod:`celeriac._conf_beat_pool` (beat, the prefork pool) imported at their place, since the
registry keeps the order of declaration; ``_routing_settings.py``, ``_hub_settings.py``... declare
their own). The machinery lives in sibling modules and is re-exported here, so one import gives
the registry with the core's settings:

- :mod:`celeriac._conf_parse`: parsers (environment strings -> values) and checks;
- :mod:`celeriac._conf_registry`: :class:`Setting`, :data:`REGISTRY`, unknown-name errors;
- :mod:`celeriac._conf_refused`: the Celery names refused, with their reasons;
- :mod:`celeriac._conf_settings`: :class:`Settings`, one app's effective values (precedence:
  default < ``CELERIAC_*`` environment < explicit), frozen once the app runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from celeriac._cpus import check_cpu_affinity
from celeriac._hub_urls import check_broker_url, check_failover_strategy
from celeriac._limits import check_annotations, check_rate, parse_annotations
from celeriac._task_compat import check_acks_late_setting
from celeriac.exceptions import ImproperlyConfigured

__all__ = [
    "EMBEDDED_HUB_MODES",
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


def _check_result_backend(value: Any) -> str | None:
    if value is None or value == "hub":
        return value  # type: ignore[no-any-return]
    raise ImproperlyConfigured(
        f"result_backend={value!r} is not supported: celeriac keeps results in its hub, which "
        "expires them after result_expires; leave result_backend unset (or set it to 'hub')"
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
    "worker_cpu_affinity",
    None,
    "Keep the worker process's threads on these CPUs (threads, solo and asyncio pools; Linux): "
    "None lets the kernel place them; 'one' puts them on one CPU, the least busy when the "
    "worker starts; or a CPU list such as '0' or '0,2-3'. The pool's threads share one GIL, "
    "and a GIL handed to a thread on another CPU costs that CPU a wake-up: on one CPU a worker "
    "of quick tasks drained 1.1-1.6x as many a second (README, Benchmarks). Not for tasks that "
    "spend their time in C code that releases the GIL (numpy...), nor for tasks that start "
    "programs (a child inherits the CPUs); several workers on one machine: give each its own "
    "CPU. An embedded hub keeps every CPU.",
    parse=str,
    check=check_cpu_affinity,
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

# The hub's store and the embedded hub, declared here: the registry keeps the order.
from celeriac._conf_hub import EMBEDDED_HUB_MODES, HUB_SYNC_MODES  # noqa: E402

declare("imports", [], "Modules a worker imports at start (comma-separated in the environment).")
declare("include", [], "More modules a worker imports at start, after imports.")

# The settings of beat and of the prefork pool, declared after these (the registry keeps order).
from celeriac import _conf_beat_pool  # noqa: E402, F401
