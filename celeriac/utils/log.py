"""``get_task_logger`` and ``get_logger``: Celery's logging helpers, on structlog.

``logger = get_task_logger(__name__)`` at module level, then ``logger.info("Adding %s + %s",
x, y)`` inside a task: each record carries the running task's name and id (bound at the time
of the call, so one module-level logger serves every task and thread). ``%``-style arguments
are formatted as the standard library does; keyword arguments become structured fields.
Records go where celeriac's own do (``celeriac._log``): through structlog in a worker, to the
standard library logger of that name in a program that did not configure structlog.
"""

from __future__ import annotations

from typing import Any

from .._log import get_logger as get_celeriac_logger
from .._request import current_request

__all__ = ["TaskLogger", "get_logger", "get_task_logger"]


class TaskLogger:
    """A logger that binds the current task's name and id to each record."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _log(self, method: str, event: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        if args:
            event = event % args
        req = current_request()
        if req is not None and not req.called_directly:
            kw = {"task_name": req.task, "task_id": req.id, **kw}
        getattr(get_celeriac_logger(self.name), method)(event, **kw)

    def debug(self, event: str, *args: Any, **kw: Any) -> None:
        """Log at DEBUG."""
        self._log("debug", event, args, kw)

    def info(self, event: str, *args: Any, **kw: Any) -> None:
        """Log at INFO."""
        self._log("info", event, args, kw)

    def warning(self, event: str, *args: Any, **kw: Any) -> None:
        """Log at WARNING."""
        self._log("warning", event, args, kw)

    warn = warning

    def error(self, event: str, *args: Any, **kw: Any) -> None:
        """Log at ERROR."""
        self._log("error", event, args, kw)

    def exception(self, event: str, *args: Any, **kw: Any) -> None:
        """Log at ERROR with the current exception's traceback."""
        self._log("exception", event, args, kw)

    def critical(self, event: str, *args: Any, **kw: Any) -> None:
        """Log at CRITICAL."""
        self._log("critical", event, args, kw)


def get_task_logger(name: str) -> TaskLogger:
    """A logger for task modules (Celery's ``celery.utils.log.get_task_logger``)."""
    return TaskLogger(name)


def get_logger(name: str) -> Any:
    """A logger of that name, routed like celeriac's own (Celery's ``get_logger``)."""
    return get_celeriac_logger(name)
