"""Log setup: structlog, readable lines on a terminal, JSON lines with ``--log-format json``."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from celeriac import signals

__all__ = ["LEVELS", "log_format", "setup_logging"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: The format chosen by the last :func:`setup_logging` (``console`` or ``json``).
_format: list[str] = ["console"]


def log_format() -> str:
    """``json`` or ``console``: how this process renders its log (the banner follows it)."""
    return _format[0]


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog for a node process.

    ``fmt``: ``console`` (coloured key=value lines), ``json`` (one JSON object per line), or
    ``auto`` (console on a terminal, JSON otherwise). A receiver of the ``setup_logging``
    signal takes over entirely, as in Celery.
    """
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    if signals.setup_logging.receivers:
        signals.setup_logging.send(
            sender=None, loglevel=level, logfile=None, format=fmt, colorize=None
        )
        return
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    _format[0] = fmt
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelName(level)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write() per line (message and newline together): a prefork parent and its
        # children share stderr, and print() writes the newline separately.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    _route_stdlib_logging(numeric, shared, renderer)
    signals.after_setup_logger.send(
        sender=None,
        logger=structlog.get_logger(),
        loglevel=level,
        logfile=None,
        format=fmt,
        colorize=None,
    )
    # Celery sends it for its task logger (``self.log`` of a bound task logs as celeriac.task).
    signals.after_setup_task_logger.send(
        sender=None,
        logger=structlog.get_logger("celeriac.task"),
        loglevel=level,
        logfile=None,
        format=fmt,
        colorize=None,
    )


def _route_stdlib_logging(level: int, shared: list[Any], renderer: Any) -> None:
    """Render the standard library's records (pykka, asyncio, user code) like ours: with
    ``--log-format json`` every line on stderr is then one JSON object."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
