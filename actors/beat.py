"""The beat timer: a pykka actor that fires periodic tasks when they are due, while its lease
at the hub lasts.

How it works
------------
The actor holds the checked ``beat_schedule`` entries, each entry's last slot (the state) and
its :class:`~celeriac._beatlease.LeaseView`. Everything it does happens in one *turn*:

1. when the lease is due for renewal (every heartbeat) it asks the hub through its
   :class:`BeatPort`; a grant carries the hub's durable state, which the actor adopts;
2. if it holds the lease, :func:`~celeriac._beatplan.plan` says which ticks are due; each is
   published (with the task id derived from its entry and slot), the actor waits for the hub's
   confirmation, and only then saves the new state at the hub (so a slot is never marked done
   before its task is durable, and a repeated publish is dropped by the hub by its id);
3. it sets one timer for the earliest of: the next due slot, the next lease renewal,
   ``beat_max_loop_interval``. The timer tells the actor a ``_Wake``; nothing polls.

A schedule that changes (``add_periodic_task``, a new ``beat_schedule``) is told to the actor
(:meth:`BeatTimer.replace`), which runs a turn at once. Each timer carries a generation number:
a wake-up from a timer that was replaced since is ignored. An exception inside a turn is logged
as ``beat_internal_error`` and the actor tries again a heartbeat later (pykka would otherwise
stop the actor). On stop the actor cancels its timer and releases its lease, so a standby beat
takes over at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from celeriac._beatlease import LeaseView
from celeriac._beatplan import Tick, plan
from celeriac._clock import SYSTEM_CLOCK, Clock
from celeriac._log import get_logger
from celeriac._protocol import BeatGrant

__all__ = ["BeatPort", "BeatTimer", "CallLater", "Cancel", "thread_timer"]

_log = get_logger("celeriac.beat")

Cancel = Callable[[], None]
CallLater = Callable[[float, Callable[[], None]], Cancel]


class BeatPort(Protocol):
    """What the timer needs from the hub (``runtime/beat.py`` implements it over the client)."""

    def lease(self, ttl: float) -> BeatGrant | None:
        """Ask for (or renew) the lease for ``ttl`` s; None if the hub did not answer."""
        ...

    def release(self) -> None:
        """Give the lease up (this beat stops)."""
        ...

    def save(self, state: Mapping[str, float]) -> BeatGrant | None:
        """Store the last-run state; the answer says whether this beat still holds the lease."""
        ...

    def send(self, tick: Tick) -> None:
        """Publish one tick (its task id already derived)."""
        ...

    def flush(self, timeout: float) -> bool:
        """Wait until every publish so far is confirmed by the hub; False if not in time."""
        ...


def thread_timer(delay: float, fn: Callable[[], None]) -> Cancel:
    """Call ``fn`` once after ``delay`` seconds, in a daemon thread; returns the cancel."""
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()
    return timer.cancel


@dataclass(frozen=True)
class _Wake:
    generation: int


@dataclass(frozen=True)
class _Replace:
    entries: dict[str, dict[str, Any]]


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


class BeatTimer(pykka.ThreadingActor):
    """The beat timer actor (see the module docstring)."""

    def __init__(
        self,
        port: BeatPort,
        entries: Mapping[str, Mapping[str, Any]],
        *,
        heartbeat: float,
        max_interval: float,
        cron_starting_deadline: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        call_later: CallLater = thread_timer,
    ) -> None:
        super().__init__()
        self.port = port
        self.entries = {name: dict(entry) for name, entry in entries.items()}
        self.state: dict[str, dt.datetime] = {}
        self.heartbeat = heartbeat
        self.max_interval = max_interval
        self.cron_starting_deadline = cron_starting_deadline
        self.clock = clock
        self.lease = LeaseView(ttl=3 * heartbeat, renew_every=heartbeat)
        self._call_later = call_later
        self._cancel: Cancel | None = None
        self._generation = 0
        self._standby_said: str | None = None
        self._refused_said: str | None = None
        self._silent_said = False
        #: Ticks published so far (for statistics and tests).
        self.sent = 0

    # -- API (from other threads) ---------------------------------------------------------------

    def replace(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        """Tell the actor its schedule changed (it looks at it at once)."""
        self.actor_ref.tell(_Replace({n: dict(e) for n, e in entries.items()}))

    # -- pykka ----------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Run the first turn (ask for the lease) at once."""
        self.actor_ref.tell(_Wake(self._generation))

    def on_receive(self, message: Any) -> Any:
        """A wake-up from the current timer, or a new schedule: run a turn."""
        if isinstance(message, _Wake) and message.generation != self._generation:
            return None  # a timer replaced since
        if isinstance(message, _Replace):
            self.entries = message.entries
            _log.info("beat_schedule_changed", entries=sorted(self.entries))
        try:
            delay = self._turn()
        except Exception as exc:  # our bug (or the port's): keep the timer alive
            _log.exception("beat_internal_error", error=f"{type(exc).__name__}: {exc}")
            delay = self.heartbeat
        self._set_timer(delay)
        return None

    def on_stop(self) -> None:
        """Cancel the timer; give the lease up so a standby beat takes over at once."""
        if self._cancel is not None:
            self._cancel()
        self._generation += 1
        if self.lease.holds(self.clock.monotonic()):
            self.port.release()
            _log.info("beat_lease_released")
        self.lease.lost()

    # -- one turn -------------------------------------------------------------------------------

    def _turn(self) -> float:
        """Renew the lease when due, fire what is due; the seconds until the next turn."""
        if self.lease.ask_due(self.clock.monotonic()):
            self._ask()
        now = self.clock.monotonic()
        if not self.lease.holds(now):
            return self.lease.wake_in(now)
        until_due = self._fire()
        return min(until_due, self.lease.wake_in(self.clock.monotonic()))

    def _ask(self) -> None:
        asked = self.clock.monotonic()
        held = self.lease.holds(asked)
        grant = self.port.lease(self.lease.ttl)
        if grant is None:
            self.lease.unanswered(self.clock.monotonic())
            if not self._silent_said:
                self._silent_said = True
                _log.warning(
                    "beat_waiting_for_hub",
                    hint="the hub does not answer lease requests; beat fires nothing until it does",
                )
            return
        if self._silent_said:
            self._silent_said = False
            _log.info("beat_hub_answering")
        if not grant.granted:
            if held:
                _log.warning("beat_lease_lost", holder=grant.holder)
            if grant.reason is not None:  # refused outright (the hub's cap), not a standby
                if self._refused_said != grant.reason:
                    self._refused_said = grant.reason
                    _log.error("beat_lease_refused", reason=grant.reason)
            elif self._standby_said != grant.holder:
                self._standby_said = grant.holder
                _log.info("beat_standby", holder=grant.holder, lease_left=round(grant.ttl, 2))
            self.lease.refused(asked, grant.ttl)
            return
        self.lease.granted(asked, grant.ttl)
        self.state = {name: _utc(t) for name, t in grant.state.items()}
        if not held:
            self._standby_said = None
            _log.info("beat_lease_acquired", ttl=grant.ttl, entries_known=len(self.state))

    def _fire(self) -> float:
        now = _utc(self.clock.time())
        result = plan(
            self.entries,
            self.state,
            now,
            max_interval=self.max_interval,
            cron_starting_deadline=self.cron_starting_deadline,
        )
        if result.ticks:
            for tick in result.ticks:
                self.port.send(tick)
                self.sent += 1
            if not self.port.flush(self.lease.ttl):
                _log.warning("beat_publish_unconfirmed", ticks=len(result.ticks))
                return self.heartbeat  # state unchanged: the same ids are sent again
        if result.state != self.state:
            answer = self.port.save({n: t.timestamp() for n, t in result.state.items()})
            if answer is not None and not answer.granted:
                _log.warning("beat_lease_lost", holder=answer.holder)
                self.lease.lost()
            self.state = result.state
        return max(0.0, (result.wake_at - _utc(self.clock.time())).total_seconds())

    def _set_timer(self, delay: float) -> None:
        if self._cancel is not None:
            self._cancel()
        self._generation += 1
        wake = _Wake(self._generation)
        ref = self.actor_ref

        def tell() -> None:
            with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile
                ref.tell(wake)

        self._cancel = self._call_later(delay, tell)
