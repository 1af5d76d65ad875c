"""celeriac's own loggers: structlog where the process configured it, stdlib logging elsewhere.

A celeriac node configures structlog (``setup_logging``), and every line goes through that
pipeline. A program that only *uses* celeriac (a web app publishing tasks, a script) may never
configure logging at all; there structlog's default would print every INFO line of ours on its
output. So until structlog is configured, our lines go to the standard library logger of the
same name instead: silent by default (Python shows only WARNING and above, on stderr, when
nothing is configured), and routed wherever the program sends its logs once it configures
``logging``. The choice is made per call, so configuring later takes effect at once.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["Logger", "get_logger"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class Logger:
    """A logger named ``name`` with structlog's call style (``log.info("event", key=value)``)."""

    __slots__ = ("_bound", "_stdlib", "_structlog")

    def __init__(self, name: str) -> None:
        self._structlog: Any = structlog.get_logger(name)
        self._stdlib = logging.getLogger(name)
        #: structlog's assembled logger, once structlog says it is fixed for good.
        self._bound: Any = None

    def _structlogger(self) -> Any:
        """The structlog logger to call: its lazy proxy, or the logger the proxy assembled
        where the configuration caches it on first use (``cache_logger_on_first_use``, as a
        node sets it up): then the proxy would hand back that same logger on every call, so
        keeping it here only skips the proxy's look-up (a few hundred ns a line)."""
        if self._bound is not None:
            return self._bound
        if not structlog.get_config()["cache_logger_on_first_use"]:
            return self._structlog
        self._bound = self._structlog.bind()
        return self._bound

    def enabled(self, method: str) -> bool:
        """Whether a line at ``method``'s level (``"info"``...) would be written: a hot path
        skips building one that would not (True whenever that is not known for sure)."""
        if not structlog.is_configured():
            return self._stdlib.isEnabledFor(_LEVELS[method])
        logger = self._bound  # (the slots ask for every task: one call less, issue 18)
        check = getattr(self._structlogger() if logger is None else logger, "is_enabled_for", None)
        return check is None or bool(check(_LEVELS[method]))

    def _emit(self, method: str, event: str, kw: dict[str, Any]) -> None:
        if structlog.is_configured():
            getattr(self._structlogger(), method)(event, **kw)
            return
        level = _LEVELS["error" if method == "exception" else method]
        if not self._stdlib.isEnabledFor(level):
            return
        exc_info = kw.pop("exc_info", method == "exception")
        fields = " ".join(f"{key}={value!r}" for key, value in kw.items())
        self._stdlib.log(level, "%s %s", event, fields, exc_info=exc_info)

    def debug(self, event: str, **kw: Any) -> None:
        """Log at DEBUG."""
        self._emit("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        """Log at INFO."""
        self._emit("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        """Log at WARNING."""
        self._emit("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        """Log at ERROR."""
        self._emit("error", event, kw)

    def critical(self, event: str, **kw: Any) -> None:
        """Log at CRITICAL."""
        self._emit("critical", event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        """Log at ERROR with the exception being handled."""
        self._emit("exception", event, kw)


def get_logger(name: str) -> Logger:
    """The logger for module ``name`` (``celeriac.worker``...)."""
    return Logger(name)
