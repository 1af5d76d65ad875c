"""While the test kit runs, its hub's and worker's log lines go through stdlib ``logging``.

structlog's default prints each line to ``sys.stdout`` from whatever thread logs: the hub and
worker threads write into whichever capture is current (or the terminal, between tests), and
their lines mix with the output a test checks with ``capsys``. Routed through ``logging``,
pytest's log capture takes them instead: shown under "Captured log" when a test fails, visible
to ``caplog``, filtered by ``--log-level``. Only a configuration that prints lines itself
(structlog's default, or ``setup_logging``'s) is replaced, and it is put back when the last
hub or worker of the kit stops; one that already goes elsewhere is the user's and left alone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import structlog

__all__ = ["logs_through_logging"]

_lock = threading.Lock()
_users = 0
#: The configuration to put back when the kit stops (None: it was not replaced).
_saved: tuple[bool, dict[str, Any]] | None = None


def _prints(factory: object) -> bool:
    """Whether structlog writes lines to a stream itself (its default, or ``setup_logging``'s)."""
    return isinstance(factory, structlog.PrintLoggerFactory | structlog.WriteLoggerFactory)


def _route() -> None:
    """One line per event (and its traceback, once) to the stdlib logger of the same name."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # render nothing the stdlib logger would drop
            structlog.contextvars.merge_contextvars,
            # pytest adds time, level and logger name; the traceback is rendered here only.
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
        # The native wrapper passes the rendered line on as is (stdlib's own .exception()
        # would print the traceback a second time); the stdlib logger's level decides.
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )


@contextlib.contextmanager
def logs_through_logging() -> Iterator[None]:
    """Route structlog to stdlib logging inside the block, if structlog prints to a stream."""
    global _users, _saved
    with _lock:
        if _users == 0 and _prints(structlog.get_config()["logger_factory"]):
            _saved = (structlog.is_configured(), structlog.get_config())
            _route()
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                was_configured, config = _saved
                _saved = None
                if was_configured:
                    structlog.configure(**config)
                else:
                    structlog.reset_defaults()
