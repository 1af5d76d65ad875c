"""The settings of time zones and periodic tasks (beat), and of the prefork pool, lost workers
and poison messages (declared when :mod:`celeriac._conf` is imported)."""

from __future__ import annotations

from typing import Any

from celeriac._beat import check_beat_schedule
from celeriac._conf_declare import declare
from celeriac._conf_parse import int_check, parse_int, parse_optional, parse_seconds, seconds_check
from celeriac._conf_refused import UNSUPPORTED
from celeriac._zones import check_timezone
from celeriac.exceptions import ImproperlyConfigured

__all__: list[str] = []

_parse_seconds_or_none = parse_optional(parse_seconds)

# -- time zones and periodic tasks (beat) --------------------------------------------------------

declare(
    "timezone",
    "UTC",
    "IANA time zone name (Europe/Berlin) crontab schedules are evaluated in; checked against "
    "this machine's tz database with a did-you-mean.",
    check=check_timezone,
)
declare(
    "enable_utc",
    True,
    "Naive datetimes (eta, expires, a schedule's last run) are read as UTC; False reads them as "
    "wall-clock time in the timezone setting (Celery's meaning).",
)


def _no_environ_schedule(text: str) -> Any:
    raise ImproperlyConfigured("beat_schedule holds schedule objects: set it in code or config")


declare(
    "beat_schedule",
    {},
    "Periodic tasks: {name: {task, schedule, args, kwargs, options, relative}} (Celery's "
    "entries); checked on assignment, unknown keys refused. Fired by `celeriac beat` or "
    "`worker -B` (one beat at a time, by a lease at the hub), each entry's last run kept "
    "durably at the hub.",
    parse=_no_environ_schedule,
    check=check_beat_schedule,
)
declare(
    "beat_max_loop_interval",
    300.0,
    "Most seconds beat sleeps before it looks at the schedule again.",
    parse=parse_seconds,
    check=seconds_check("beat_max_loop_interval", positive=True),
)
_BEAT_STATE_AT_HUB = (
    "beat keeps each entry's last run durably at the hub (one beat at a time, by a lease), so "
    "there is no scheduler class, state file or sync interval to choose"
)
UNSUPPORTED.update(
    dict.fromkeys(
        ("beat_scheduler", "beat_schedule_filename", "beat_sync_every"), _BEAT_STATE_AT_HUB
    )
)
declare(
    "beat_cron_starting_deadline",
    None,
    "Crontab entries: the most seconds beat looks back for a missed slot to run late (after "
    "a time with no beat); an older slot is skipped. None: a missed slot always runs once, "
    "late (beat's catch-up policy).",
    parse=_parse_seconds_or_none,
    check=seconds_check("beat_cron_starting_deadline", optional=True),
)

# -- prefork pool, lost workers, poison messages -------------------------------------------------

declare(
    "task_reject_on_worker_lost",
    True,
    "When the worker process running a task dies (kill -9, segfault, OOM), True gives the task "
    "back to the hub for redelivery; False ends it FAILURE with WorkerLostError. Celery's name "
    "and meaning; only the default differs (Celery: False, i.e. no redelivery).",
)
declare(
    "broker_max_deliveries",
    5,
    "Worker losses a message survives (read by the hub): after this many it is kept in the "
    "celeriac.dead_letter queue and its result is FAILURE with WorkerLostError.",
    check=int_check("broker_max_deliveries", minimum=1),
)
declare(
    "worker_max_tasks_per_child",
    None,
    "Prefork: a child process runs at most this many tasks, then is replaced (None: no limit).",
    parse=parse_optional(parse_int),
    check=int_check("worker_max_tasks_per_child", minimum=1, optional=True),
)
declare(
    "worker_max_memory_per_child",
    None,
    "Prefork: a child whose resident memory exceeds this many KiB after a task is replaced "
    "(None: no limit).",
    parse=parse_optional(parse_int),
    check=int_check("worker_max_memory_per_child", minimum=1, optional=True),
)
declare(
    "worker_autoscale_keepalive",
    30.0,
    "Prefork with --autoscale MAX,MIN: a child idle this many seconds leaves (the pool shrinks "
    "by one, never below MIN).",
    parse=parse_seconds,
    check=seconds_check("worker_autoscale_keepalive", positive=True),
)
declare(
    "worker_autoscale_grow_after",
    0.5,
    "Prefork with --autoscale MAX,MIN: when every child has been busy this many seconds without "
    "a break, one more child is started (never above MAX).",
    parse=parse_seconds,
    check=seconds_check("worker_autoscale_grow_after", positive=True),
)
