"""The last stage of a worker's stop, bounded: a worker whose tasks are done never hangs on exit.

How it works
------------
Once a stopping worker has let its running tasks finish (or handed them back), what is left to
stop (the pool's threads, the embedded hub, the sockets, the interpreter's own exit) takes well
under a second, or :data:`~.embedded_process.STOP_GRACE` for a hub that has much to commit.
:func:`guard_exit`, called at that point, starts a daemon thread that ends the process if it
still runs :data:`STUCK_AFTER` seconds later: it logs ``shutdown_stuck`` and every thread's
stack (``faulthandler``, on stderr where the log goes) and exits with :data:`EXIT_STUCK`. A bug
(a thread that never ends, a socket that never closes) then says where it is instead of hanging
a deploy until someone sends SIGKILL. A second SIGTERM or SIGINT meanwhile (the event it
returns, set) ends the process at once, as a cold shutdown promises.

A second guard, armed as the stop begins, bounds the drain too: it ends by
``worker_shutdown_timeout`` (running tasks are then handed back), so a stop still running
``worker_shutdown_timeout + 2 * STUCK_AFTER`` seconds after it began is stuck as well (a
connection loop that no longer turns).

A node holds one :class:`StopGuard`, which knows both stages and the second signal. Only the
worker processes of the CLI enable it (``run(guarded=True)``: a threads, solo or asyncio
worker, the prefork parent, and its children): a node started inside another program
(``app.Worker().run()``, a test's) is left to that program.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from typing import Final

from celeriac._log import get_logger

__all__ = ["EXIT_STUCK", "STUCK_AFTER", "StopGuard", "guard_exit"]

_log = get_logger("celeriac.worker")

#: Seconds the rest of a stop may take once the tasks are done (the embedded hub's own grace
#: is 10 s).
STUCK_AFTER: Final = 30.0
#: The exit code of a worker whose stop hung (as a cold shutdown's: not a clean exit).
EXIT_STUCK: Final = 1


def guard_exit(*, after: float = STUCK_AFTER) -> threading.Event:
    """End this process if it still runs ``after`` seconds from now (saying where each thread
    is); set the event returned to end it at once (a second signal: a cold shutdown)."""
    now = threading.Event()

    def guard() -> None:
        # An infinite worker_shutdown_timeout: no time bound, only the event.
        if now.wait(after if after < threading.TIMEOUT_MAX else None):
            _log.warning("cold_shutdown_exit", hint="the tasks were done: exiting at once")
        else:
            _log.critical(
                "shutdown_stuck",
                after=after,
                hint="a bug: the worker did not exit in time; each thread's stack follows",
            )
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(EXIT_STUCK)

    threading.Thread(target=guard, name="celeriac-exit-guard", daemon=True).start()
    return now


class StopGuard:
    """A node's stop, bounded in its two stages (module docs); inert unless ``enabled``."""

    def __init__(self) -> None:
        #: Set by ``run(guarded=True)``: this process is the node's own.
        self.enabled = False
        self._now: threading.Event | None = None

    def stopping(self, drain: float) -> None:
        """The stop begins; its drain ends within ``drain`` s (``worker_shutdown_timeout``)."""
        if self.enabled:
            guard_exit(after=drain + 2 * STUCK_AFTER)

    def tasks_done(self) -> None:
        """The tasks are done or handed back: what is left gets :data:`STUCK_AFTER` seconds."""
        if self.enabled:
            self._now = guard_exit()

    def second_signal(self) -> None:
        """A cold shutdown was asked for: past the tasks, nothing is left to wait for."""
        if self._now is not None:
            self._now.set()
