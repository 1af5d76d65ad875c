"""Log setup: structlog, readable lines on a terminal, JSON lines with ``--log-format json``."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from celeriac import signals

__all__ = ["LEVELS", "setup_logging"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelName(level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=numeric, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    signals.after_setup_logger.send(
        sender=None,
        logger=structlog.get_logger(),
        loglevel=level,
        logfile=None,
        format=fmt,
        colorize=None,
    )
