"""How the prefork parent stops: a warm shutdown on the first signal, cold on the second.

The first SIGTERM/SIGINT tells each child over its pipe to stop consuming and finish its task;
a second one tells them to hand their tasks back (the hub requeues them) and leave at once; a
child still there :data:`COLD_GRACE` seconds later is SIGKILLed. See :mod:`.prefork`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Final

from celeriac import signals
from celeriac._log import get_logger

from .connection_effects import abandoned
from .exit_guard import StopGuard
from .prefork_slots import Slot

__all__ = ["COLD_GRACE", "ParentShutdown"]

_log = get_logger("celeriac.prefork")

#: How long a cold shutdown waits for children before SIGKILL.
COLD_GRACE: Final = 1.0


class ParentShutdown:
    """The part of :class:`~.prefork.PreforkNode` that hears signals and stops its children."""

    _slots: list[Slot]
    _shutdown: threading.Event
    _cold: threading.Event
    _signal_name: str
    _told: str | None
    _cold_deadline: float | None
    exit_code: int
    hostname: str
    stop_guard: StopGuard

    def _install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            if self._shutdown.is_set():
                _log.warning("cold_shutdown", signal=name)
                self._cold.set()
                self.stop_guard.second_signal()
            else:
                _log.info("warm_shutdown", signal=name, hint="send it again for a cold shutdown")
                self._signal_name = name
                self._shutdown.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _shutting_down(self, now: float) -> bool:
        """Tell the children (once per stage); True when none is left."""
        if self._told is None:
            signals.worker_shutting_down.send(
                sender=self.hostname, sig=self._signal_name, how="warm", exitcode=self.exit_code
            )
            self._tell_all("stop")
        if self._cold.is_set() and self._told != "cold":
            running = [s.task.id for s in self._slots if s.task is not None]
            if running:
                abandoned(self, running)
            self._tell_all("cold")
            self._cold_deadline = now + COLD_GRACE
        if self._cold_deadline is not None and now > self._cold_deadline:
            for slot in self._slots:
                if slot.process is not None and slot.pid is not None:
                    _log.warning("child_killed", child=slot.index, pid=slot.pid, reason="cold")
                    with contextlib.suppress(OSError):
                        os.kill(slot.pid, signal.SIGKILL)
            self._cold_deadline = now + COLD_GRACE
        return all(s.process is None for s in self._slots)

    def _tell_all(self, command: str) -> None:
        self._told = command
        for slot in self._slots:
            slot.due = None
            if slot.conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    slot.conn.send((command,))
