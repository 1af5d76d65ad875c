"""The delivery timeout (``broker_visibility_timeout``): a delivery held too long goes back.

A worker that answers pings but never finishes (a stuck thread, a bug that loses the outcome)
would keep what it was given forever. With a timeout set, a delivery that has been with one
peer longer than that is taken back and made ready again for anyone (counted as
``redelivered``, logged ``delivery_timed_out``); if the slow peer reports later, its outcome is
refused (it no longer holds the delivery: see :mod:`.ownership`) and the task runs again:
at-least-once. Off by default: a task may legitimately run for hours. Set it above your
longest task's run time, as Celery's ``visibility_timeout`` for Redis and SQS.
"""

from __future__ import annotations

from typing import Final

from celeriac._log import get_logger

from .lifecycle import Lifecycle

__all__ = ["SCAN_INTERVAL", "Visibility"]

_log = get_logger("celeriac.hub")

#: Seconds between two scans of the deliveries in flight.
SCAN_INTERVAL: Final = 1.0


class Visibility(Lifecycle):
    """Taking back deliveries held longer than :attr:`visibility_timeout`."""

    #: Seconds a delivery may stay with one peer (None: forever).
    visibility_timeout: float | None = None
    _next_scan: float = 0.0

    def _expire_deliveries(self) -> None:
        timeout = self.visibility_timeout
        mono = self.clock.monotonic()
        if timeout is None or mono < self._next_scan:
            return
        self._next_scan = mono + SCAN_INTERVAL
        for peer in list(self._peers.values()):
            for mid in list(peer.inflight):
                msg = self._messages.get(mid)
                if msg is None or mono - msg.delivered_at <= timeout:
                    continue
                _log.warning(
                    "delivery_timed_out",
                    id=mid,
                    node=peer.node,
                    held=round(mono - msg.delivered_at, 1),
                )
                self._release(msg)  # its slot stays taken: the peer gets no credit back
                self._requeue(msg)
