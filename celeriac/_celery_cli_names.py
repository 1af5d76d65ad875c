"""Celery 5.7.0's command line: the ``celery`` group's commands and ``celery worker``'s options.

One of the lists of Celery's public names (see :mod:`celeriac._celery_names`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLI_COMMANDS", "WORKER_OPTIONS"]

CLI_COMMANDS: Final[tuple[str, ...]] = (
    "amqp",
    "beat",
    "call",
    "control",
    "events",
    "graph",
    "inspect",
    "list",
    "logtool",
    "migrate",
    "multi",
    "purge",
    "report",
    "result",
    "shell",
    "status",
    "upgrade",
    "worker",
)
"""Commands of the ``celery`` program."""

WORKER_OPTIONS: Final[tuple[str, ...]] = (
    "--hostname",
    "--detach",
    "--statedb",
    "--loglevel",
    "--optimization",
    "--prefetch-multiplier",
    "--disable-prefetch",
    "--concurrency",
    "--pool",
    "--task-events",
    "--time-limit",
    "--soft-time-limit",
    "--max-tasks-per-child",
    "--pool-start-method",
    "--max-memory-per-child",
    "--purge",
    "--queues",
    "--exclude-queues",
    "--include",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
    "--heartbeat-interval",
    "--autoscale",
    "--beat",
    "--schedule-filename",
    "--scheduler",
    "--logfile",
    "--pidfile",
    "--uid",
    "--gid",
    "--umask",
    "--executable",
)
"""Options of ``celery worker`` (each by one of its spellings)."""
